"""TEMPORARY stand-in for the one inference path (replaced by the enhance branch's module)."""

import numpy as np


def enhance_array(model, x, frame_len=None, overlap=0.25, batch_size=1):
    from kspikese.data.framing import frame, unframe

    if not overlap:
        frames, _ = frame(np.asarray(x, np.float32), frame_len)
        out = model.predict(frames[..., None], batch_size=batch_size, verbose=0)[..., 0]
        return unframe(out, len(x))
    from kspikese import enhancement

    return enhancement.enhance(np.asarray(x, np.float32), 16000, model=model,
                               batch_size=batch_size, overlap=overlap)

"""The allocation benchmark: every target x allocation converted, scored and priced."""

import numpy as np
import pytest

from kspikese.bench.allocation import ALLOCATIONS, compare
from kspikese.convert import convert
from kspikese.energy import estimate

from test_relays import CFG, FRAME, frames, tiny_tasnet


def utterances(n=2, seconds=0.5):
    rng = np.random.default_rng(3)
    t = np.arange(int(16000 * seconds)) / 16000
    out = []
    for k in range(n):
        clean = (0.3 * np.sin(2 * np.pi * (180 + 40 * k) * t) * (1 + np.sin(2 * np.pi * 3 * t)))
        noisy = clean + 0.05 * rng.normal(size=t.size)
        out.append((f"u{k}", clean.astype(np.float32), noisy.astype(np.float32)))
    return out


def test_compare_gives_one_row_per_target_and_allocation_with_its_events():
    ann, calibration = tiny_tasnet(), frames(8)
    cfg = {"convert": dict(CFG, relays=True), "frame_len": FRAME,
           "eval": {"overlap": 0.25, "batch_size": 8}}
    utts = utterances(n=1)
    ann_scores, rows = compare(ann, cfg, utts, calibration, targets=(3.0, 10.0))
    assert [(r["target_spikes"], r["allocation"]) for r in rows] == [
        (t, a) for t in (3.0, 10.0) for a in ALLOCATIONS]
    assert np.isfinite(ann_scores["si_snr"])
    assert all(np.isfinite(r["si_snr"]) and r["events_per_mac"] > 0 for r in rows)
    # the uniform row's events are those of the plain conversion on the first 8 noisy frames
    first = utts[0][2][:8 * FRAME].reshape(8, FRAME, 1)
    plain = convert(ann, dict(CFG, relays=True, target_spikes=3.0), seed=0, calibration=calibration)
    macs = estimate(ann, first).dense_ops
    assert rows[0]["events_per_mac"] * macs == pytest.approx(estimate(plain, first).synops)
    # ten spikes per layer cost more than three, whatever the allocation
    for a in range(len(ALLOCATIONS)):
        assert rows[len(ALLOCATIONS) + a]["events_per_mac"] > rows[a]["events_per_mac"]

"""Framing (16,384-sample frames), the tf.data pipeline and whole-utterance iteration."""

import numpy as np
import pytest
import soundfile as sf

from kspikese.data import Pair, frame, frame_dataset, iter_utterances, unframe
from kspikese.audio_io import AudioError

SR = 16000


def test_frame_by_hand():
    frames, n_valid = frame(np.arange(10), 4)
    assert frames.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 0, 0]]
    assert n_valid == 2
    frames, n_valid = frame(np.arange(8), 4)
    assert frames.shape == (2, 4) and n_valid == 4


def test_a_file_shorter_than_one_frame_is_padded():
    frames, n_valid = frame(np.ones(100, np.float32))
    assert frames.shape == (1, 16384) and n_valid == 100
    assert frames[0, :100].sum() == 100 and not frames[0, 100:].any()


def test_unframe_inverts_frame():
    x = np.random.default_rng(0).standard_normal(40000).astype(np.float32)
    frames, _ = frame(x)
    assert np.array_equal(unframe(frames, len(x)), x)
    assert np.array_equal(unframe(frames[..., None], len(x)), x)  # (n, L, 1) model outputs too


def test_frame_errors():
    with pytest.raises(ValueError, match="empty"):
        frame(np.zeros(0))
    with pytest.raises(ValueError, match="1-D"):
        frame(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="does not fit"):
        unframe(np.zeros((2, 4)), 9)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    d = tmp_path_factory.mktemp("pairs")
    out = []
    # lengths 1.5, 0.5 and 2 frames of 1024 -> 2 + 1 + 2 = 5 frames
    for i, n in enumerate((1536, 512, 2048)):
        clean = np.full(n, 0.1 * (i + 1), np.float32)
        noisy = clean + np.float32(0.01)
        (d / "c").mkdir(exist_ok=True)
        (d / "n").mkdir(exist_ok=True)
        sf.write(str(d / "c" / f"u{i}.wav"), clean, SR, subtype="FLOAT")
        sf.write(str(d / "n" / f"u{i}.wav"), noisy, SR, subtype="FLOAT")
        out.append(Pair(f"u{i}", d / "c" / f"u{i}.wav", d / "n" / f"u{i}.wav"))
    return out


def collect(ds):
    return [tuple(t.numpy() for t in batch) for batch in ds]


def test_frame_dataset_shapes_and_padding_mask(pairs):
    ds = frame_dataset(pairs, frame_len=1024, batch_size=2, shuffle=False, return_mask=True)
    batches = collect(ds)
    assert [b[0].shape for b in batches] == [(2, 1024, 1), (2, 1024, 1), (1, 1024, 1)]
    noisy = np.concatenate([b[0] for b in batches])[..., 0]
    clean = np.concatenate([b[1] for b in batches])[..., 0]
    mask = np.concatenate([b[2] for b in batches])[..., 0]
    assert noisy.dtype == np.float32 and clean.dtype == np.float32
    # in order: u0 frame 1 (full), u0 frame 2 (512 real), u1 (512 real), u2 two full frames
    assert mask.sum(axis=1).tolist() == [1024, 512, 512, 1024, 1024]
    assert np.allclose(clean[1, :512], 0.1) and not clean[1, 512:].any() and not noisy[1, 512:].any()
    assert np.allclose(noisy - clean, 0.01 * mask, atol=1e-6)
    assert np.abs(noisy).max() <= 1.0


def test_training_pipelines_read_ahead_without_the_autotuning_thread(pairs):
    """Its wake-up period is what every epoch's iterator teardown waited for (docs/recipes.md)."""
    ds = frame_dataset(pairs, frame_len=1024, batch_size=2)
    assert ds.options().autotune.enabled is False
    assert len(collect(ds)) == 3  # 5 frames in batches of 2, the same as before


def test_frame_dataset_two_tuples_by_default(pairs):
    batch = next(iter(frame_dataset(pairs, frame_len=1024, batch_size=3)))
    assert len(batch) == 2 and tuple(batch[0].shape) == (3, 1024, 1)


def test_frame_dataset_shuffle_is_seeded(pairs):
    def order(seed):
        ds = frame_dataset(pairs, frame_len=1024, batch_size=5, shuffle=True, seed=seed)
        return [collect(ds)[0][1][:, 0, 0].round(2).tolist() for _ in range(1)][0]

    a, b = order(0), order(0)
    assert a == b
    assert sorted(a) == pytest.approx([0.1, 0.1, 0.2, 0.3, 0.3])
    assert any(order(s) != a for s in (1, 2, 3))


def test_frame_dataset_max_frames(pairs):
    ds = frame_dataset(pairs, frame_len=1024, batch_size=8, shuffle=True, seed=0, max_frames=2)
    for _ in range(2):  # every epoch stops at max_frames
        (batch,) = collect(ds)
        assert batch[0].shape[0] == 2


def test_iter_utterances(pairs):
    got = list(iter_utterances(pairs))
    assert [g[0] for g in got] == ["u0", "u1", "u2"]
    assert [len(g[1]) for g in got] == [1536, 512, 2048]
    assert np.allclose(got[2][2] - got[2][1], 0.01)


def test_pairs_of_different_lengths_are_an_error(tmp_path):
    sf.write(str(tmp_path / "c.wav"), np.zeros(100), SR)
    sf.write(str(tmp_path / "n.wav"), np.zeros(90), SR)
    with pytest.raises(AudioError, match="x: clean .*c.wav has 100 samples but noisy .*n.wav has 90"):
        list(iter_utterances([Pair("x", tmp_path / "c.wav", tmp_path / "n.wav")]))


def test_stacked_frames_cut_each_signal_pad_its_end_and_stop_at_max_frames():
    from kspikese.data.framing import stacked_frames

    a, b = np.arange(1, 6, dtype=np.float64), np.array([7.0, 8.0, 9.0])
    out = stacked_frames([a, b], frame_len=4)
    assert out.shape == (3, 4, 1) and out.dtype == np.float32
    np.testing.assert_array_equal(out[..., 0], [[1, 2, 3, 4], [5, 0, 0, 0], [7, 8, 9, 0]])
    np.testing.assert_array_equal(stacked_frames([a, b], 4, max_frames=2), out[:2])

"""The enhance benchmark: its table, and one real measurement in a child process (tiny model)."""

import numpy as np
import soundfile as sf

import kspikese  # first: it selects Keras 2 for TensorFlow
import tensorflow as tf
from kspikese.bench import enhance as B


def test_table_reports_rtf_speedup_and_memory():
    speed = [
        {
            "model": "m",
            "params": 1234,
            "overlap": 0.25,
            "rtf": 0.08,
            "peak_rss_mb": 700.4,
            "cores": 2,
            "cpu_per_audio_s": 0.15,
        },
        {"model": "x", "error": "boom"},
    ]
    memory = [
        {"audio_s": 150.0, "peak_rss_mb": 801.0, "rss_before_mb": 760.0, "rtf": 0.1},
        {"audio_s": 600.0, "peak_rss_mb": 802.0, "rss_before_mb": 760.0, "rtf": 0.1},
    ]
    table = B.format_table(speed, memory, 60)
    assert "| m | 1,234 | 0.25 | 0.080 | 12.5 | 0.150 | 700 |" in table
    assert "| x | - | - | failed: boom | - | - | - |" in table
    assert "| 2.5 | 801 | 760 | 0.100 |" in table and "| 10.0 | 802 | 760 | 0.100 |" in table
    assert "2 cores" in table


def test_test_file_is_written_in_blocks_with_the_right_length(tmp_path):
    B.write_test_file(tmp_path / "a.wav", 5.0)
    x, sr = sf.read(tmp_path / "a.wav")
    assert sr == 16000 and x.shape == (80000,) and 0.05 < np.std(x) < 0.5


def test_measure_runs_a_model_in_a_child_process(tmp_path):
    x = tf.keras.Input((None, 1))
    model = tf.keras.Model(x, tf.keras.layers.Conv1D(1, 3, padding="same")(x))
    model.save(tmp_path / "m.keras")
    r = B.measure(str(tmp_path / "m.keras"), 3.0)
    assert "error" not in r, r
    assert r["audio_s"] == 3.0 and r["params"] == 4 and r["cores"] <= 2
    assert 0 < r["rtf"] < 5 and r["peak_rss_mb"] >= r["rss_before_mb"] > 50
    assert r["cpu_per_audio_s"] > 0
    assert B.measure(str(tmp_path / "missing.keras"), 1.0)["error"]

"""The hedgewars voice packs: joining short lines into utterances, finding the packs, the
voice-balanced limited sets of the default corpus."""

import numpy as np
import pytest

from kspikese.corpus import balanced_subset
from kspikese.data import hedgewars
from kspikese.data.pairs import CorpusError, Pair
from kspikese.data.testing import make_fake_hedgewars

SR = 16000


def test_lines_are_joined_to_at_least_join_s_with_gaps():
    lines = [(f"l{i}", np.full(int(s * SR), 0.1 * (i + 1), np.float32))
             for i, s in enumerate([0.5, 1.0, 1.5, 0.4, 0.3, 2.0, 0.2])]
    utts = hedgewars.join_lines(lines, seed=0, pack="P", join_s=2.0, gap_s=0.25)
    ids = [i for _, g in utts for i in g]
    assert sorted(ids) == [f"l{i}" for i in range(7)]  # every line once
    gap = int(0.25 * SR)
    for x, g in utts:
        n = sum(int(s * SR) for i, s in enumerate([0.5, 1.0, 1.5, 0.4, 0.3, 2.0, 0.2]) if f"l{i}" in g)
        assert len(x) == n + gap * (len(g) - 1)  # lines plus one gap between neighbours
        assert len(x) >= 2.0 * SR
        # the first line's samples, then silence of gap_s
        first = int(dict(zip([f"l{i}" for i in range(7)], [0.5, 1.0, 1.5, 0.4, 0.3, 2.0, 0.2]))[g[0]] * SR)
        if len(g) > 1:
            assert np.all(x[first:first + gap] == 0) and x[first - 1] != 0
    # seeded order: same seed same utterances, another seed another order
    again = hedgewars.join_lines(lines, seed=0, pack="P", join_s=2.0, gap_s=0.25)
    assert [g for _, g in again] == [g for _, g in utts]
    assert [g for _, g in hedgewars.join_lines(lines, 1, "P", 2.0, 0.25)] != [g for _, g in utts]


def test_a_short_remainder_joins_the_last_utterance():
    lines = [(f"l{i}", np.ones(SR, np.float32)) for i in range(5)]
    utts = hedgewars.join_lines(lines, seed=0, pack="P", join_s=2.0, gap_s=0.0)
    assert [len(g) for _, g in utts] == [2, 3]


def test_packs_split_is_disjoint_and_robot_is_left_out():
    packs = hedgewars.PACKS
    flat = packs["train"] + packs["valid"] + packs["test"]
    assert len(flat) == len(set(flat)) == 14 and "Robot" not in flat
    with pytest.raises(CorpusError, match="processed voices"):
        hedgewars.utterances("/nonexistent", hedgewars.split_config({"train": ["Robot"]}), 0)


def test_voice_lines_are_found_and_missing_packs_named(tmp_path):
    make_fake_hedgewars(tmp_path / "hedgewars" / "voices", {"British": 2}, seconds=0.6)
    d = hedgewars.find_voices_dir(tmp_path / "root", source=tmp_path)
    assert d == tmp_path / "hedgewars" / "voices"
    got = hedgewars.list_lines(d, ["British"])
    assert [lid for lid, _ in got["British"]] == ["line000", "line001"]
    with pytest.raises(CorpusError, match=r"Mobster: no voice lines.*\['British', 'Mobster'\]"):
        hedgewars.list_lines(d, ["British", "Mobster"])
    x = hedgewars.read_line(got["British"][0][1])  # 44.1 kHz stereo -> 16 kHz mono at -26 dBFS
    from kspikese.data.mixing import active_level_db

    assert x.ndim == 1 and 0.6 * 0.9 - 0.01 < len(x) / SR < 0.6 * 1.2 + 0.01
    assert active_level_db(x) == pytest.approx(-26.0, abs=1e-3)


def test_balanced_subset_deals_over_voices():
    pairs = [Pair(f"{v}__{i:02d}", None, None) for v in ("a", "b", "c") for i in range(10)]
    got = balanced_subset(pairs, 7)
    assert [p.name for p in got] == ["a__00", "a__01", "a__02", "b__00", "b__01", "c__00", "c__01"]

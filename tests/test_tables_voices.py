"""The per-voice SI-SNR breakdown of Tables 1-4, on hand-made per-utterance rows."""

from kspikese.data.pairs import voice_of
from kspikese.tables import voice_rows


def test_voice_of_reads_the_default_corpus_and_vctk_names():
    assert voice_of("hw_Pirate__u003") == "hw_Pirate"
    assert voice_of("ru_RU_f_IvrvoiceRU__vm-goodbye") == "ru_RU_f_IvrvoiceRU"
    assert voice_of("p232_001") == "p232"
    assert voice_of("DR1_FAKS0_SA1") is None


def test_voice_rows_average_each_voices_own_utterances():
    cols = ["Noisy", "ANN"]
    names = ["a__1", "a__2", "b__1"]
    results = {"Noisy": {"rows": [{"name": n, "si_snr": v} for n, v in zip(names, [1.0, 3.0, 5.0])]},
               "ANN": {"rows": [{"name": n, "si_snr": v}
                                for n, v in zip(names, [2.0, float("nan"), 11.0])]}}
    rows = voice_rows(results, cols)
    assert rows == [["a", 2, "2.00", "2.00"],   # the NaN utterance is left out of the ANN's mean
                    ["b", 1, "5.00", "11.00"],
                    ["all", 3, "3.00", "6.50"]]


def test_voice_rows_are_empty_when_names_carry_no_voice():
    results = {"Noisy": {"rows": [{"name": "DR1_FAKS0_SA1", "si_snr": 1.0}]}}
    assert voice_rows(results, ["Noisy"]) == []
    assert voice_rows({"Noisy": {"rows": []}}, ["Noisy"]) == []


def test_metric_rows_give_stoi_three_decimals_and_the_rest_two():
    from kspikese import report

    rows = report.metric_rows(["Noisy", "ANN"], {"Noisy": {"stoi": 0.8184, "si_snr": 6.126},
                                                 "ANN": {"stoi": 0.8216}}, ["si_snr", "stoi"])
    assert rows == [["SI-SNR (dB)", "6.13", "–"], ["STOI", "0.818", "0.822"]]

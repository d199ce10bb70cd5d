"""The per-voice and per-input-SNR breakdowns of Tables 1-4, on hand-made per-utterance rows."""

from kspikese.data.pairs import voice_of
from kspikese.tables import input_snr_rows, voice_rows


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


def test_input_snr_rows_bin_by_the_noisy_inputs_own_si_snr():
    cols = ["Noisy", "ANN"]
    noisy = {"u1": -1.0, "u2": 2.5, "u3": 7.4, "u4": 14.0, "u5": 16.0, "u6": float("nan")}
    ann = {"u1": 4.0, "u2": 6.5, "u3": 10.0, "u4": 13.0, "u5": 17.0, "u6": 3.0}
    results = {"Noisy": {"rows": [{"name": n, "si_snr": v} for n, v in noisy.items()]},
               "ANN": {"rows": [{"name": n, "si_snr": v} for n, v in ann.items()]}}
    rows = input_snr_rows(results, cols)
    # 2.5 falls in the upper bin (lo <= x < hi), 7.4 below 7.5; no input between 7.5 and 12.5
    # (that bin is left out); the NaN input belongs to no bin
    assert rows == [["< 2.5 dB", 1, "-1.00", "4.00"],
                    ["2.5–7.5 dB", 2, "4.95", "8.25"],
                    ["≥ 12.5 dB", 2, "15.00", "15.00"]]
    assert input_snr_rows(results, cols, edges=(0.0,))[0] == ["< 0 dB", 1, "-1.00", "4.00"]
    assert input_snr_rows({"Noisy": {"rows": []}, "ANN": {"rows": []}}, cols) == []

"""``python -m kspikese.weights.ship``: provenance of shipped models and refusals."""

import json
from types import SimpleNamespace

import pytest

from kspikese.weights import ship


def test_card_fields_carry_data_config_seed_and_the_columns_metrics():
    table = {"table": "table1", "data": {"corpus": "default", "test_utterances": 40},
             "metrics": {"Wave-U-Net": {"si_snr": 9.5}, "SNN-Wave-U-Net": {"si_snr": 9.1}}}
    run = SimpleNamespace(cfg={"model": "wave_u_net", "ann": {"lr": 1e-3}}, seed=3)
    fields = ship.card_fields(table, run, "SNN-Wave-U-Net")
    assert fields["test_metrics"] == {"si_snr": 9.1}
    assert fields["data"]["test_utterances"] == 40
    assert fields["config"]["ann"]["lr"] == 1e-3 and fields["seed"] == 3
    assert "SNN-Wave-U-Net" in fields["test_metrics_source"]


def test_missing_table_names_the_file_and_the_command(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"table1\.json.*make reproduce-table1"):
        ship.ship("table1", results=tmp_path)


def test_quick_or_other_seed_tables_are_not_shipped(tmp_path):
    (tmp_path / "table3").mkdir()
    path = tmp_path / "table3" / "table3.json"
    path.write_text(json.dumps({"table": "table3", "quick": True, "seed": 0}))
    with pytest.raises(ValueError, match="quick run"):
        ship.ship("table3", results=tmp_path)
    path.write_text(json.dumps({"table": "table3", "quick": False, "seed": 1}))
    with pytest.raises(ValueError, match="another seed"):
        ship.ship("table3", results=tmp_path, seed=0)


def test_cli_refuses_unknown_tables_and_reports_missing_runs(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        ship.main(["--tables", "table2"])
    assert exc.value.code == 2 and "table2 not shipped" in capsys.readouterr().err
    assert ship.main(["--tables", "table1", "--results", str(tmp_path)]) == 1
    assert "make reproduce-table1" in capsys.readouterr().err

"""helpers.publish.tables on the fixture results folder (real tiny trainings, see fixtures/make_results.py):
the tables' numbers against an independent computation from the record files."""

import json
import shutil
import statistics
from pathlib import Path

import matplotlib
import pytest

from helpers.publish import figures, tables
from helpers.runs.records import load, read_record, record_path, write_record

matplotlib.use("Agg")
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "results"


def fixture_records():
    """experiment -> list of record dicts, read with json alone."""
    by_experiment = {}
    for path in sorted(FIXTURE.glob("*/seed-*.json")):
        record = json.loads(path.read_text())
        by_experiment.setdefault(record["experiment"], []).append(record)
    return by_experiment


@pytest.fixture
def results_copy(tmp_path):
    shutil.copytree(FIXTURE, tmp_path / "results")
    return tmp_path / "results"


def test_tables_match_an_independent_computation():
    found = load(FIXTURE)
    table = tables.report_table(found, "III").set_index("experiment")
    for name in ("baseline", "ws", "ws-aux"):
        records = fixture_records()[name]
        row = table.loc[name]
        assert row["rounds"] == len(records) == 2
        assert row["train_pct"] == pytest.approx(
            statistics.mean(100 * r["train_errors"] / r["n_train"] for r in records))
        assert row["test_pct"] == pytest.approx(
            statistics.mean(100 * r["test_errors"] / r["n_test"] for r in records))
        # the report's SD: of the NUMBER of errors, sample SD
        assert row["train_sd"] == pytest.approx(statistics.stdev(r["train_errors"] for r in records))
        assert row["test_sd"] == pytest.approx(statistics.stdev(r["test_errors"] for r in records))
    assert list(table.index) == ["baseline", "ws", "ws-aux"]
    assert list(table["report_test_pct"]) == [20.1, 12.6, 6.9]
    assert list(table["report_test_sd"]) == [47, 9.4, 5.5]


def test_table_iv_counts_rounds_and_marks_the_incomplete_row():
    found = load(FIXTURE)
    table = tables.report_table(found, "IV").set_index("experiment")
    assert list(table.index) == ["ws-plain", "ws-aux-c0.5", "ws-aux-c0.75", "ws-aux-d0.25",
                                 "ws-aux-d0.75"]
    assert list(table["rounds"]) == [2, 2, 2, 2, 1]
    assert table.loc["ws-aux-d0.75", "note"].startswith("INCOMPLETE: 1 of 2 rounds")
    assert not table.loc["ws-aux-c0.5", "note"].startswith("INCOMPLETE")
    # a single round has no SD; its mean is its one value
    only = fixture_records()["ws-aux-d0.75"][0]
    assert table.loc["ws-aux-d0.75", "test_pct"] == pytest.approx(only["test_error_rate"])
    assert table["test_sd"].isna().tolist() == [False, False, False, False, True]
    # the fixture's tiny trainings are flagged as off the report's protocol
    assert "epochs=2, n_pairs=100" in table.loc["ws-plain", "note"]


def test_expected_rounds_parameter_marks_every_short_row():
    table = tables.report_table(load(FIXTURE), "III", expected_rounds=10)
    assert table["note"].str.startswith("INCOMPLETE: 2 of 10 rounds").all()


def test_damaged_record_is_named_and_left_out(results_copy):
    damaged = record_path(results_copy, "ws", 1)
    damaged.write_text(damaged.read_text()[:100])
    found = load(results_copy)
    assert "Damaged record left out: ws/seed-1.json" in tables.describe(found)
    row = tables.report_table(found, "III").set_index("experiment").loc["ws"]
    kept = read_record(record_path(results_copy, "ws", 0))
    assert row["rounds"] == 1 and row["test_pct"] == pytest.approx(kept["test_error_rate"])
    assert row["note"].startswith("INCOMPLETE: 1 of 2 rounds")
    assert "1 damaged record(s) were left out" in tables.conclusion(found)


def test_missing_or_empty_folder(tmp_path):
    for folder in (tmp_path / "missing", tmp_path):
        found = load(folder)
        assert tables.describe(found).startswith("No run records under")
        table = tables.report_table(found, "III")
        assert list(table["rounds"]) == [0, 0, 0] and set(table["note"]) == {"no records"}
        assert tables.cost_table(found).empty
        assert tables.conclusion(found) == "No run records yet, so nothing to conclude."
        figures.test_errors(found)
        figures.learning_curves(found)


def test_cost_table():
    table = tables.cost_table(load(FIXTURE))
    records = fixture_records()
    assert list(table.index)[:3] == ["baseline", "ws-plain", "ws"]
    for name, rows in records.items():
        assert table.loc[name, "parameters"] == str(rows[0]["n_parameters"])
        assert table.loc[name, "seconds per training"] == pytest.approx(
            statistics.mean(r["seconds"] for r in rows), abs=0.005)


def set_test_errors(results_dir, errors_by_experiment):
    """Rewrite the copied records so each experiment's rounds have the given test errors."""
    for name, errors in errors_by_experiment.items():
        for seed in (0, 1):
            path = record_path(results_dir, name, seed)
            record = read_record(path)
            record["test_errors"] = errors + seed
            record["test_error_rate"] = 100 * record["test_errors"] / record["n_test"]
            write_record(record, results_dir)


def test_conclusion_follows_the_numbers(results_copy):
    set_test_errors(results_copy, {"baseline": 40, "ws": 30, "ws-aux": 10, "ws-plain": 35})
    text = tables.conclusion(load(results_copy))
    assert "baseline 40.50%, weight sharing 30.50%" in text and "eq. (1) 10.50%" in text
    assert "lowers the test error by 10.00 points" in text and "lowers it by 20.00 points" in text
    assert "the direction of both steps is the report's" in text
    assert "from 35.50% to 30.50%" in text
    assert "0 of these 4 discounted weightings beat eq. (1)" in text

    set_test_errors(results_copy, {"baseline": 10, "ws": 30, "ws-aux": 48})
    text = tables.conclusion(load(results_copy))
    assert "raises the test error by 20.00 points" in text
    assert "the direction of the steps differs from the report's" in text
    assert "lowest mean test error is ws-aux-d0.75's" in text  # 47% on its one round


def test_figures_saved_only_when_a_folder_is_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    found = load(FIXTURE)
    figures.test_errors(found)
    figures.learning_curves(found)
    assert list(tmp_path.iterdir()) == []
    figures.test_errors(found, "figures")
    figures.learning_curves(found, "figures")
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == \
        ["learning_curves.png", "test_errors.png"]

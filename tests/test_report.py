"""helpers.publish.tables and figures on the fixture results folder (real tiny trainings, see
fixtures/make_results.py) and on records with chosen error counts (publish_tools): the tables'
numbers against an independent computation from the record files, the conclusion and the
README block against the corrected tests, the figures against what a reader needs."""

import copy
import json
import math
import re
import shutil
import statistics
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from publish_tools import WIGGLE, write_records

from helpers.catalogue import experiments
from helpers.publish import figures, stats, tables
from helpers.runs.records import Results, load, read_record, record_path, write_record

matplotlib.use("Agg")
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "results"
# Words that state a verdict; none may describe a difference the corrected test does not support.
VERDICT_WORDS = re.compile(r"\b(better|worse|beats?|beaten|lowers|raises|fewer|improves?|helps?|"
                           r"costs|saves|significantly)\b|has a (lower|higher)", re.IGNORECASE)


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
    # the gaps: ours minus the report's, in points, for train and test
    assert table.loc["ws", "test_gap"] == pytest.approx(table.loc["ws", "test_pct"] - 12.6)
    assert table.loc["ws", "train_gap"] == pytest.approx(table.loc["ws", "train_pct"] - 3.8)


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
        assert tables.budget_table(found).empty and tables.numerics_table(found).empty
        assert tables.conclusion(found) == "No run records yet, so nothing to conclude."
        figures.test_errors(found)
        figures.learning_curves(found)


# --- the budget table -------------------------------------------------------------------------
def test_budget_table_counts_steps_parameters_flops_and_seconds(tmp_path):
    from helpers.bench import training_flops

    results = tmp_path / "results"
    shutil.copytree(FIXTURE, results)
    for seed in (0, 1):  # ws-aux-c0.5 trained with batches of 25: four times the steps
        record = read_record(record_path(results, "ws-aux-c0.5", seed))
        record["params"]["batch_size"] = 25
        record.pop("schema")
        write_record(record, results)
    table = tables.budget_table(load(results))
    records = fixture_records()
    assert list(table.index) == tables.ordered_experiments(load(results).frame)
    for name, rows in records.items():
        params = rows[0]["params"]
        batch = 25 if name == "ws-aux-c0.5" else params["batch_size"]
        assert table.loc[name, "optimiser steps"] == \
            params["epochs"] * math.ceil(params["n_pairs"] / batch)
        assert table.loc[name, "training pairs"] == params["n_pairs"] == 100
        assert table.loc[name, "parameters"] == rows[0]["n_parameters"]
        assert table.loc[name, "seconds per training (median)"] == pytest.approx(
            statistics.median(r["seconds"] for r in rows), abs=0.0051)  # shown to 2 decimals
    assert table.loc["ws-aux-c0.5", "steps vs ws-aux (x)"] == 4
    assert table.loc["ws", "steps vs ws-aux (x)"] == 1
    flops = training_flops(records["baseline"][0]["params"])[0]
    assert table.loc["baseline", "GFLOP per training"] == pytest.approx(flops / 1e9, abs=0.005)
    assert table.loc["baseline", "FLOPs vs ws-aux (x)"] == pytest.approx(
        flops / training_flops(records["ws-aux"][0]["params"])[0], abs=0.005)
    assert table.loc["baseline", "parameters vs ws-aux (x)"] == pytest.approx(
        records["baseline"][0]["n_parameters"] / records["ws-aux"][0]["n_parameters"], abs=0.005)
    assert table.loc["ws", "timed on"] == "cpu, 1 thread"


# --- the numerics of a folder -------------------------------------------------------------------
def test_numerics_table_names_each_numerics_and_says_when_a_folder_mixes_them(results_copy):
    found = load(results_copy)
    table = tables.numerics_table(found)
    assert list(table["records"]) == [15]
    assert table.index[0].startswith("torch ") and "1 thread" in table.index[0]
    assert "were made with the same numerics" in tables.numerics_summary(found)
    record = read_record(record_path(results_copy, "ws", 1))
    record["numerics"]["threads"] = 2
    record.pop("schema")
    write_record(record, results_copy)
    found = load(results_copy)
    table = tables.numerics_table(found)
    assert sorted(table["records"]) == [1, 14]
    assert table.loc[next(n for n in table.index if "2 threads" in n), "experiments"] == "ws"
    text = tables.numerics_summary(found)
    assert "mix 2 numerics" in text and "span several numerics: ws." in text


# --- the wording rule -------------------------------------------------------------------------
def report_errors(seeds=10, base=50, **shifts):
    """Test errors of the report's eight configurations over `seeds` rounds: `base` plus the
    WIGGLE pattern plus a constant per configuration (`ws_aux=...` for ws-aux)."""
    names = [row["name"] for row in experiments.CATALOGUE if row.get("report")]
    return {name: [base + shifts.get(name.replace("-", "_").replace(".", ""), 0) + w
                   for w in WIGGLE[:seeds]] for name in names}


def test_a_difference_the_corrected_test_does_not_support_never_reads_as_better_or_worse(tmp_path):
    # The example: a discounted weighting 1.5 errors below eq. (1), p about 0.45;
    # every configuration with its own round-to-round noise, so that every comparison is tested.
    rng = np.random.default_rng(0)
    errors = {name: list(60 + rng.normal(0, 6, 10).round()) for name in report_errors()}
    errors["ws-aux-c0.75"] = list(np.array(errors["ws-aux"]) - 1.5 + rng.normal(0, 6, 10).round())
    found = load(write_records(tmp_path / "results", errors))
    paired = stats.paired_table(found.frame).set_index("before")
    assert paired.loc["ws-aux-c0.75", "mean_difference"] > 0  # ws-aux has the higher mean
    assert 0.05 < paired.loc["ws-aux-c0.75", "p_value"]
    # below 0.05 alone, not once corrected for the 7 comparisons: no verdict either
    assert paired.loc["ws-aux-c0.5", "p_value"] < 0.05 < paired.loc["ws-aux-c0.5", "p_holm"]
    assert (paired["verdict"] == stats.NOT_DISTINGUISHABLE).all()
    for text in (tables.conclusion(found), tables.readme_results(found)):
        assert not VERDICT_WORDS.search(text), VERDICT_WORDS.search(text)
        assert "`ws-aux` is not distinguishable from `ws-aux-c0.75` in test error" in text
    assert "lower test error than eq. (1): none; higher: none" in tables.conclusion(found)


def test_a_difference_the_corrected_test_supports_gets_its_verdict(tmp_path):
    # ws 20 errors above ws-aux in every round and the baseline 30 above ws (give or take one):
    # real differences; ws-aux-c0.5 3 above ws-aux, give or take 3: p = 0.015 alone, not below
    # 0.05 once corrected for the 7 tests; the others differ by nothing on average (p = 1).
    a = np.array([1, -1] * 5)
    aux = 40 + np.array(WIGGLE)
    errors = {"ws-aux": aux, "ws": aux + 20 + a, "baseline": aux + 50 + 2 * a,
              "ws-plain": aux + 20 + 2 * a, "ws-aux-c0.5": aux + 3 + 3 * a,
              "ws-aux-c0.75": aux + a, "ws-aux-d0.25": aux + a, "ws-aux-d0.75": aux + a}
    found = load(write_records(tmp_path / "results", errors))
    paired = stats.paired_table(found.frame).set_index("before")
    assert set(paired["family"]) == {7}
    assert paired.loc["ws-aux-c0.5", "p_value"] < 0.05 <= paired.loc["ws-aux-c0.5", "p_holm"]
    text = tables.conclusion(found)
    assert "`ws` has a lower test error than `baseline`" in text
    assert "`ws-aux` has a lower test error than `ws`" in text
    assert "`ws-aux` is not distinguishable from `ws-aux-c0.5`" in text
    assert "(the report's means go the same way)" in text
    # the discounted weightings, judged against eq. (1) by the same rule
    assert ("lower test error than eq. (1): none; higher: none; not distinguishable from it: "
            "`ws-aux-c0.5`, `ws-aux-c0.75`, `ws-aux-d0.25`, `ws-aux-d0.75`") in text


def test_verdict_is_the_one_rule():
    assert stats.verdict(-5, 0.01) == stats.LOWER and stats.verdict(5, 0.049) == stats.HIGHER
    for difference, p in ((-5, 0.05), (-5, 0.5), (-5, float("nan")), (-5, None), (0, 0.001),
                          (float("nan"), 0.001)):
        assert stats.verdict(difference, p) == stats.NOT_DISTINGUISHABLE
    assert stats.judgement("a", "b", -2, 0.01) == "a has a lower test error than b"
    assert stats.judgement("a", "b", 2, 0.01, "validation error") == \
        "a has a higher validation error than b"
    assert stats.judgement("a", "b", -2, 0.2) == "a is not distinguishable from b in test error"


def test_p_values_are_printed_readably():
    assert stats.format_p(0.00001) == "p < 0.001" and stats.format_p(0.02134) == "p = 0.021"
    assert stats.format_p(0.45) == "p = 0.45" and stats.format_p(float("nan")) == "no p-value"
    assert stats.p_cell(0.0004) == "< 0.001" and stats.p_cell(0.0123) == "0.012"
    assert stats.p_cell(float("nan")) == "-"


# --- distance to the report, and units -----------------------------------------------------------
def test_far_from_the_report_rule():
    assert tables.far_from_report(0.57 - 4.0, 29.4)    # ws-plain's train error: 3.4 points off
    assert not tables.far_from_report(1.2, 60)         # within 1.5 points
    assert tables.far_from_report(1.6, 60)             # beyond 1.5 points
    assert tables.far_from_report(-1.2, 5.5)           # beyond 2 SDs: 2 x 0.55 points
    assert not tables.far_from_report(1.0, 5.5)
    assert not tables.far_from_report(float("nan"), 5.5)


def test_a_row_far_from_the_report_is_named_with_both_gaps(tmp_path):
    # every test error 7-13% (the fixture's 100 pairs), train errors near the report's, except
    # ws-plain's train error: 1% against the report's 4.0%
    errors = {name: [e // 6 for e in values] for name, values in report_errors().items()}
    errors["ws-plain"] = [14 + w // 3 for w in WIGGLE]      # test 14.0% against 14.5%
    train = {name: [4] * 10 for name in errors} | {"ws-plain": [1] * 10}
    found = load(write_records(tmp_path / "results", errors, train))
    rows = tables.report_table(found).set_index("experiment")
    assert rows.loc["ws-plain", "far"] == "train"
    assert rows.loc["ws-plain", "train_gap"] == pytest.approx(-3.0)
    text = tables.conclusion(found)
    assert ("`ws-plain` (train 1.00% against the report's 4.0%, gap -3.0 points; test 14.00% "
            "against 14.5%, gap -0.5 points)") in text
    assert "more than 1.5 points from the report's, or more than 2 of the report's SDs" in text
    assert "agrees" not in text


def test_readme_tables_hold_one_unit_per_column(tmp_path):
    found = load(FIXTURE)
    block = tables.readme_results(found)
    headers = [line for line in block.splitlines() if line.startswith("| configuration")]
    assert headers == [
        ("| configuration | report row | rounds | test error % (mean over the rounds) | SD (errors "
         "out of 100) | report test % | report SD (errors out of 1000) | gap to the report "
         "(points) |")]
    rows = [line for line in block.splitlines() if line.startswith("| `")]
    assert rows and not any(re.search(r"\d \(\d", row) for row in rows)  # no "3.2 (41.1)"
    ws = next(row for row in rows if row.startswith("| `ws` | Table III"))
    table = tables.report_table(found).set_index("experiment").loc["ws"]
    assert ws == (f"| `ws` | Table III, WS | 2 | **{table['test_pct']:.1f}** | "
                  f"{table['test_sd']:.1f} | 12.6 | 9.4 | {table['test_gap']:+.1f} |")


def test_no_generated_line_reads_as_a_numbered_list(tmp_path):
    errors = report_errors(baseline=40, ws=10, ws_aux=-10)
    errors |= {name: [50 + w for w in WIGGLE] for name in experiments.SWEEP.values()
               if name not in errors}
    found = load(write_records(tmp_path / "results", errors))
    texts = [tables.readme_results(found), tables.conclusion(found),
             stats.paired_summary(stats.paired_table(found.frame)),
             stats.sweep_answer(stats.sweep_table(found.frame))]
    for text in texts:
        assert not [line for line in text.splitlines() if re.match(r"\s*\d+[.)](\s|$)", line)]


# --- figures -------------------------------------------------------------------------------------
def test_figures_saved_only_when_a_folder_is_given_and_silently(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    found = load(FIXTURE)
    figures.test_errors(found)
    figures.learning_curves(found)
    assert list(tmp_path.iterdir()) == []
    shown = capsys.readouterr().out
    figures.test_errors(found, "figures")
    figures.learning_curves(found, "figures")
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == \
        ["learning_curves.png", "test_errors.png"]
    assert capsys.readouterr().out == shown == ""  # the same outputs, saved or not


def test_test_errors_figure_reads_at_the_readme_width(tmp_path):
    from PIL import Image

    names = experiments.expand(["all"])  # every row measured on the test pairs
    errors = {name: [50 + i + w // 3 for w in WIGGLE[:3]] for i, name in enumerate(names)}
    found = load(write_records(tmp_path / "results", errors))
    figure = figures.test_errors_figure(found)
    axes = figure.axes[0]
    shown = [label.get_text() for label in axes.get_yticklabels()]
    sweep = [name for _, name in sorted(experiments.SWEEP.items()) if name.startswith("ws-aux-c")]
    assert shown == ["baseline", "ws-plain", "ws", "ws-aux", *sweep, "ws-aux-d0.25",
                     "ws-aux-d0.75", "best", "same-budget"]
    assert axes.get_ylim()[0] > axes.get_ylim()[1]  # the first configuration on top
    marked = next(line for line in axes.get_lines() if line.get_label() == "the report's mean")
    published = {row["name"]: row["report"][4] for row in experiments.CATALOGUE if row["report"]}
    assert sorted(marked.get_xdata()) == sorted(published.values())
    figures.save_figure(figure, tmp_path, "test_errors.png")
    width, height = Image.open(tmp_path / "test_errors.png").size
    assert width <= 830 and height < 3 * width


def test_learning_curves_label_the_epochs_of_every_bottom_panel(tmp_path):
    errors = {name: [40, 41] for name in ("baseline", "ws-plain", "ws", "ws-aux", "ws-aux-c0.5",
                                          "ws-aux-d0.25")}
    found = load(write_records(tmp_path / "results", errors))
    figure = figures.learning_curves_figure(found)   # 4 columns: 4 panels, then 2
    figure.canvas.draw()
    panels = [axis for axis in figure.axes if axis.get_visible()]
    assert len(panels) == 6
    for axis in panels:
        labelled = any(t.get_visible() and t.get_text() for t in axis.get_xticklabels())
        bottom = axis.get_title().split(" ")[0] in ("ws-aux", "ws", "ws-aux-c0.5", "ws-aux-d0.25")
        assert labelled == bottom, axis.get_title()
        assert (axis.get_xlabel() == "epoch") == bottom


def one_epoch(found):
    records = copy.deepcopy(found.records)
    for record in records:
        record["history"] = record["history"][:1]
    return Results(found.folder, records)


def test_curves_of_one_epoch_show_their_points():
    found = one_epoch(load(FIXTURE))
    for figure in (figures.learning_curves_figure(found),
                   figures.run_curves_figure(found.records[0])):
        lines = [line for axis in figure.axes for line in axis.get_lines()]
        assert lines and all(line.get_marker() == "o" for line in lines)
        assert all(len(line.get_xdata()) == 1 for line in lines)
    many = copy.deepcopy(found.records[0])
    many["history"] = many["history"] * 20
    for i, step in enumerate(many["history"]):
        many["history"][i] = dict(step, epoch=i + 1)
    lines = figures.run_curves_figure(many).axes[1].get_lines()
    assert all(line.get_marker() in (None, "None", "") for line in lines)

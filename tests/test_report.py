"""helpers.publish.tables and figures on the fixture records (real tiny trainings, see
fixtures/make_results.py) and on records with chosen error counts (publish_tools): which records
count, the tables' numbers against an independent computation from the record files, the README
block against the corrected tests, rows the catalogue may add, and the figures."""

import copy
import json
import re
import shutil
import statistics

import matplotlib
import numpy as np
import pytest
from publish_tools import (FIXTURE, TINY, WIGGLE, consistent, diverged_at_epoch_2, fixture,
                           round_of, template, write_records)

from helpers.catalogue import experiments
from helpers.files import NOTEBOOKS
from helpers.publish import figures, stats, tables
from helpers.publish.summary import TEMPLATE
from helpers.runs.records import load, read_record, record_path, write_record

matplotlib.use("Agg")
# Words that state a verdict; none may describe a difference the corrected test does not support.
VERDICT_WORDS = re.compile(r"\b(better|worse|beats?|beaten|lowers|raises|fewer|improves?|helps?|"
                           r"costs|saves|significantly)\b|has a (lower|higher)", re.IGNORECASE)


def readme_block(found):
    return tables.readme_block(found, NOTEBOOKS / TEMPLATE)


def fixture_records():
    """experiment -> list of record dicts, read with json alone."""
    by_experiment = {}
    for path in sorted(FIXTURE.glob("*/seed-*.json")):
        record = json.loads(path.read_text())
        by_experiment.setdefault(record["experiment"], []).append(record)
    return by_experiment


def report_errors(seeds=10, base=50, **shifts):
    """Test errors of the report's rows over `seeds` rounds: `base` plus the WIGGLE pattern plus
    a constant per configuration (`ws_aux=...` for ws-aux)."""
    return {name: [base + shifts.get(name.replace("-", "_").replace(".", ""), 0) + w
                   for w in WIGGLE[:seeds]] for name in experiments.REPORT_EXPERIMENTS}


# --- which records count ------------------------------------------------------------------------
def test_a_record_counts_only_when_it_is_its_catalogue_rows(tmp_path):
    results = tmp_path / "results"
    write_records(results, {"ws": [40, 42], "ws-aux-c0.5": [30, 31]})
    other = round_of(template("ws-aux-c0.5"), 42)     # a seed the row is not published with
    write_record(other, results)
    changed = template("ws-aux-c0.5")   # the row's seed, another alpha
    changed["params"] |= {"alpha": 0.6}
    write_record(round_of(consistent(changed), 2), results)
    foreign = template("ws") | {"experiment": "mine"}
    foreign["params"]["experiment"] = "mine"
    write_record(foreign, results)
    found = tables.published(load(results), TINY)
    assert sorted((r["experiment"], r["seed"]) for r in found.records) == [
        ("ws", 0), ("ws", 1), ("ws-aux-c0.5", 0), ("ws-aux-c0.5", 1)]
    assert dict(found.left_out) == {
        "mine/seed-0.json": "not a catalogue row",
        "ws-aux-c0.5/seed-2.json": "made with alpha 0.6, the row's 0.5",
        "ws-aux-c0.5/seed-42.json": "seed 42, not one of 0-9"}
    # the left-out records change nothing that is published
    table = tables.report_table(found).loc["ws-aux-c0.5"]
    assert table["rounds"] == 2 and table["test_pct"] == pytest.approx(30.5)
    # without the overrides the batch was run with, no record is the row's
    plain = tables.published(load(results))
    assert not plain.records and "epochs 2, the row's 25" in dict(plain.left_out)["ws/seed-0.json"]


def test_tables_match_an_independent_computation():
    table = tables.report_table(fixture(), "III")
    for name in ("baseline", "ws", "ws-aux"):
        records = fixture_records()[name]
        row = table.loc[name]
        assert row["rounds"] == len(records) == 2 and row["expected_rounds"] == 10
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
    assert table.loc["ws", "test_gap"] == pytest.approx(table.loc["ws", "test_pct"] - 12.6)
    assert table.loc["ws", "train_gap"] == pytest.approx(table.loc["ws", "train_pct"] - 3.8)


def test_rounds_are_counted_against_the_rows_seeds():
    table = tables.report_table(fixture(), "IV")
    assert list(table.index) == ["ws-plain", "ws-aux-c0.5", "ws-aux-c0.75", "ws-aux-d0.25",
                                 "ws-aux-d0.75"]
    assert list(table["rounds"]) == [2, 2, 2, 2, 1]
    only = fixture_records()["ws-aux-d0.75"][0]  # a single round: its mean, no SD
    assert table.loc["ws-aux-d0.75", "test_pct"] == pytest.approx(only["test_error_rate"])
    assert table["test_sd"].isna().tolist() == [False, False, False, False, True]
    shown = tables.show_table(table)
    assert list(shown[("", "rounds")]) == ["2 of 10"] * 4 + ["1 of 10"]
    assert shown.loc["ws-aux-d0.75", ("test error", "SD (errors out of 100)")] == "-"


def test_a_damaged_record_is_named_and_left_out(tmp_path):
    results = tmp_path / "results"
    write_records(results, {"ws": [40, 42]})
    damaged = record_path(results, "ws", 1)
    damaged.write_text(damaged.read_text()[:100])
    found = tables.published(load(results), TINY)
    assert [p.name for p, _ in found.damaged] == ["seed-1.json"]
    row = tables.report_table(found).loc["ws"]
    assert row["rounds"] == 1 and row["test_pct"] == pytest.approx(40.0)


def test_a_diverged_round_is_counted_in_no_mean_and_said_everywhere_it_shows(tmp_path):
    """ws-aux seed 1 a diverged training's: Table III's rounds say so, its mean is seed 0's, the
    README block names it, and a row whose every round diverged still has its line."""
    results = tmp_path / "results"
    shutil.copytree(FIXTURE, results)
    for name, seed in (("ws-aux", 1), ("ws-aux-d0.75", 0)):
        path = record_path(results, name, seed)
        path.write_text(json.dumps(diverged_at_epoch_2(json.loads(path.read_text()))))
    found = tables.published(load(results), TINY)
    assert [(r["experiment"], r["seed"]) for r in found.diverged] == [("ws-aux", 1),
                                                                      ("ws-aux-d0.75", 0)]
    table = tables.report_table(found)
    assert table.loc["ws-aux", "test_pct"] == read_record(record_path(
        results, "ws-aux", 0))["test_error_rate"]
    rounds = tables.show_table(table)[("", "rounds")]
    assert (rounds["ws-aux"], rounds["ws-aux-d0.75"]) == ("1 of 10, 1 diverged",
                                                          "0 of 10, 1 diverged")
    block = readme_block(found)
    assert ("**Trainings that diverged** (recorded as such; every mean and paired test here is "
            "over the rounds that trained): `ws-aux` seed 1, `ws-aux-d0.75` seed 0.") in block
    assert "`ws-aux` (1 of 10 rounds, 1 diverged)" in block


def test_missing_or_empty_folder(tmp_path):
    for folder in (tmp_path / "missing", tmp_path):
        found = tables.published(load(folder))
        table = tables.report_table(found, "III")
        assert list(table["rounds"]) == [0, 0, 0]
        assert tables.budget_table(found).empty and tables.numerics_table(found).empty
        assert figures.test_errors_figure(found) is None
        assert figures.learning_curves_figure(found) is None
        assert "No run records yet" not in readme_block(found)  # the template copes
        assert tables.group_table(found, tables.BEYOND).empty


# --- the budget table: the records' own budgets -----------------------------------------------
def test_budget_table_reads_each_records_budget(tmp_path):
    results = tmp_path / "results"
    write_records(results, {"ws": [40, 42], "ws-aux": [30, 31]})
    for seed in (0, 1):  # what ws's records say they cost
        record = read_record(record_path(results, "ws", seed))
        record["budget"] = {"steps": 2, "training_flops": 3 * 10 ** 9, "evaluation_flops": 2}
        record["seconds"] = 2.0 + seed
        record.pop("schema")
        write_record(record, results)
    table = tables.budget_table(tables.published(load(results), TINY))
    aux = read_record(record_path(results, "ws-aux", 0))
    assert table.loc["ws", "optimiser steps"] == 2 and table.loc["ws-aux", "optimiser steps"] == 2
    assert table.loc["ws", "GFLOP per training"] == 3.0
    assert table.loc["ws", "steps vs ws-aux (x)"] == 1
    assert table.loc["ws", "FLOPs vs ws-aux (x)"] == pytest.approx(
        3e9 / aux["budget"]["training_flops"], abs=0.005)
    assert table.loc["ws", "seconds per training (median)"] == 2.5
    assert table.loc["ws", "parameters"] == aux["n_parameters"]


# --- the numerics of a folder -------------------------------------------------------------------
def test_numerics_table_names_each_numerics(tmp_path):
    results = tmp_path / "results"
    write_records(results, {"ws": [40, 42], "ws-aux": [30, 31]})
    table = tables.numerics_table(tables.published(load(results), TINY))
    assert list(table["records"]) == [4] and "1 thread" in table.index[0]
    record = read_record(record_path(results, "ws", 1))
    record["numerics"]["threads"] = 2
    record.pop("schema")
    write_record(record, results)
    table = tables.numerics_table(tables.published(load(results), TINY))
    assert sorted(table["records"]) == [1, 3]
    assert table.loc[next(n for n in table.index if "2 threads" in n), "configurations"] == "ws"


# --- the README block: the wording rule ---------------------------------------------------------
def test_a_difference_the_corrected_test_does_not_support_never_reads_as_better_or_worse(tmp_path):
    # a discounted weighting 1.5 errors below eq. (1), p about 0.45; every configuration with its
    # own round-to-round noise, so that every comparison is tested
    rng = np.random.default_rng(0)
    errors = {name: list(60 + rng.normal(0, 6, 10).round()) for name in report_errors()}
    errors["ws-aux-c0.75"] = list(np.array(errors["ws-aux"]) - 1.5 + rng.normal(0, 6, 10).round())
    found = tables.published(load(write_records(tmp_path / "results", errors)), TINY)
    paired = stats.paired_table(found.frame).set_index("before")
    assert paired.loc["ws-aux-c0.75", "difference"] > 0 and \
        0.05 < paired.loc["ws-aux-c0.75", "p_value"]
    # below 0.05 alone, not once corrected for the 7 comparisons: no verdict either
    assert paired.loc["ws-aux-c0.5", "p_value"] < 0.05 < paired.loc["ws-aux-c0.5", "p_holm"]
    assert (paired["verdict"] == stats.NOT_DISTINGUISHABLE).all()
    text = readme_block(found)
    assert not VERDICT_WORDS.search(text), VERDICT_WORDS.search(text)
    assert "Holm-corrected over the 7 comparisons tested together, 0 find a lower test error" \
        in text and "`ws-aux` from `ws-aux-c0.75`" in text


def test_a_difference_the_corrected_test_supports_gets_its_verdict(tmp_path):
    # ws 20 errors above ws-aux in every round and the baseline 30 above ws (give or take one):
    # real differences; ws-aux-c0.5 3 above ws-aux, give or take 3: p = 0.015 alone, not below
    # 0.05 once corrected for the 7 tests
    a = np.array([1, -1] * 5)
    aux = 40 + np.array(WIGGLE)
    errors = {"ws-aux": aux, "ws": aux + 20 + a, "baseline": aux + 50 + 2 * a,
              "ws-plain": aux + 20 + 2 * a, "ws-aux-c0.5": aux + 3 + 3 * a,
              "ws-aux-c0.75": aux + a, "ws-aux-d0.25": aux + a, "ws-aux-d0.75": aux + a}
    found = tables.published(load(write_records(tmp_path / "results", errors)), TINY)
    paired = stats.paired_table(found.frame).set_index("before")
    assert set(paired["family"]) == {7}
    assert paired.loc["ws-aux-c0.5", "p_value"] < 0.05 <= paired.loc["ws-aux-c0.5", "p_holm"]
    text = readme_block(found)
    lower = paired[paired["verdict"] == stats.LOWER]
    assert {"baseline", "ws"} <= set(lower.index) and len(lower) < 7
    assert (f"Holm-corrected over the 7 comparisons tested together, {len(lower)} find a lower "
            f"test error after the change; not distinguishable: ") in text
    assert "`ws-aux` from `ws-aux-c0.5`" in text
    assert not [line for line in text.splitlines() if re.match(r"\s*\d+[.)](\s|$)", line)]


def test_verdict_is_the_one_rule():
    assert stats.verdict(-5, 0.01) == stats.LOWER and stats.verdict(5, 0.049) == stats.HIGHER
    for difference, p in ((-5, 0.05), (-5, 0.5), (-5, float("nan")), (-5, None), (0, 0.001),
                          (float("nan"), 0.001)):
        assert stats.verdict(difference, p) == stats.NOT_DISTINGUISHABLE
    assert stats.judgement("a", "b", -2, 0.01) == "a has a lower test error than b"
    assert stats.judgement("a", "b", 2, 0.01, "validation error") == \
        "a has a higher validation error than b"
    assert stats.judgement("a", "b", -2, 0.2) == "a is not distinguishable from b in test error"
    assert stats.format_p(0.00001) == "p < 0.001" and stats.format_p(0.02134) == "p = 0.021"
    assert stats.format_p(float("nan")) == "no p-value"


# --- distance to the report, and units -----------------------------------------------------------
def test_far_from_the_report_rule():
    assert tables.far_from_report(0.57 - 4.0, 29.4)    # ws-plain's train error: 3.4 points off
    assert not tables.far_from_report(1.2, 60)         # within 1.5 points
    assert tables.far_from_report(1.6, 60)             # beyond 1.5 points
    assert tables.far_from_report(-1.2, 5.5)           # beyond 2 SDs: 2 x 0.55 points
    assert not tables.far_from_report(1.0, 5.5)
    assert not tables.far_from_report(float("nan"), 5.5)


def test_a_row_far_from_the_report_is_named_with_its_far_gaps(tmp_path):
    # every test error 7-13% (the fixture's 100 pairs), train errors near the report's, except
    # ws-plain's train error: 1% against the report's 4.0%
    errors = {name: [e // 6 for e in values] for name, values in report_errors().items()}
    errors["ws-plain"] = [14 + w // 3 for w in WIGGLE]      # test 14.0% against 14.5%
    train = {name: [4] * 10 for name in errors} | {"ws-plain": [1] * 10}
    found = tables.published(load(write_records(tmp_path / "results", errors, train)), TINY)
    rows = tables.report_table(found)
    assert rows.loc["ws-plain", "far"] == "train"
    assert rows.loc["ws-plain", "train_gap"] == pytest.approx(-3.0)
    shown = tables.show_table(rows)
    assert shown.loc["ws-plain", ("", "far from the report")] == "train"
    assert shown.loc["ws-plain", ("train error", "gap (points)")] == "-3.00"
    for name, row in rows.iterrows():  # every far row with its far gaps, the others within
        assert shown.loc[name, ("", "far from the report")] == (row["far"] or "-")


def test_readme_table_holds_one_unit_per_column_and_the_tables_numbers():
    found = fixture()
    block = readme_block(found)
    headers = [line for line in block.splitlines() if line.startswith("| configuration")]
    assert headers[0] == ("| configuration | the report's row | test error % | SD (errors out "
                          "of 100) | the report's % | its SD (errors out of 1000) | gap (points) |")
    rows = [line for line in block.splitlines() if line.startswith("| `")]
    assert rows and not any(re.search(r"\d \(\d", row) for row in rows)  # no "3.2 (41.1)"
    for name, row in tables.report_table(found).iterrows():
        sd = "-" if row["rounds"] < 2 else f"{row['test_sd']:.1f}"
        assert (f"| `{name}` ({row['rounds']} of 10 rounds) | Table {row['table']}, "
                f"{row['label']} | **{row['test_pct']:.2f}** | {sd} | "
                f"{row['report_test_pct']:.2f} | {row['report_test_sd']:.1f} | "
                f"{row['test_gap']:+.2f} |") in rows


def test_every_error_in_percent_has_two_decimals_and_every_sd_one():
    found = fixture()
    for line in readme_block(found).splitlines():
        if line.startswith("| `") and "GFLOP" not in line:
            cells = [cell.strip(" *") for cell in line.split("|")[1:-1]]
            for cell in cells[2:]:
                assert re.fullmatch(r"-|[+-]?\d+\.\d{1,2}( \(`[\w.-]+`\)| \([\d.]+x\))?|"
                                    r"[\d,]+( \([\d.]+x\))?|\d+-\d+", cell), (line, cell)
    shown = tables.show_table(tables.report_table(found))
    for (kind, column), values in shown.items():
        if kind and column != "far from the report":
            digits = 1 if column.startswith(("SD", "report SD")) else 2
            assert all(v == "-" or re.fullmatch(rf"[+-]?\d+\.\d{{{digits}}}", v) for v in values), \
                (kind, column, list(values))


# --- rows the catalogue may add: generic over its metadata ---------------------------------------
def test_rows_beside_others_held_out_and_beyond_the_report_need_no_new_code(tmp_path):
    """Where a row shows follows from its catalogue metadata alone (`beside`, groups holdout
    and beyond)."""
    results = tmp_path / "results"
    write_records(results, report_errors() | {"ws-aux-first": [20] * 10,
                                              "same-budget": [15] * 10, "best": [2] * 10})
    held = write_records(tmp_path / "held", {"ws-aux-holdout": [25, 26]})
    for path in held.glob("*/*"):
        (results / path.parent.name).mkdir(exist_ok=True)
        path.rename(results / path.parent.name / path.name)
    found = tables.published(load(results), TINY)
    assert not found.left_out
    table = tables.report_table(found)
    names = list(table.index)
    assert names[names.index("ws-aux") + 1] == "ws-aux-first" and "ws-aux-holdout" not in names
    assert table.loc["ws-aux-first", "report_test_pct"] == 6.9
    holdout = tables.group_table(found, tables.HOLDOUT)
    assert list(holdout.index) == ["ws-aux-holdout"] and holdout.iloc[0]["expected_rounds"] == 10
    assert holdout.iloc[0]["beside_test_pct"] == pytest.approx(table.loc["ws-aux", "test_pct"])
    assert list(tables.group_table(found, tables.BEYOND).index) == ["best", "same-budget"]
    block = readme_block(found)
    assert "| `ws-aux-first`" not in block  # the first rebuild: in the prose, gaps from records
    first = table.loc["ws-aux-first"]
    assert f"left the auxiliary-loss rows {abs(first['test_gap']):.2f} points" in block
    assert "| `ws-aux-holdout` (2 of 10 rounds) | 1000-1009 | **25.50** |" in block
    assert ("Beyond the report: `best` 2.00%, `same-budget` 15.00%; both compute the comparison "
            "from the two digit distributions instead of learning it") in block
    assert "| `same-budget` | **15.00** |" in block


# --- figures -------------------------------------------------------------------------------------
def test_figures_are_saved_only_when_a_folder_is_given_and_silently(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    found = fixture()
    figures.show(figures.test_errors_figure(found))
    assert list(tmp_path.iterdir()) == [] and capsys.readouterr().out == ""
    figures.show(figures.learning_curves_figure(found), "figures", "learning_curves.png")
    assert [p.name for p in (tmp_path / "figures").iterdir()] == ["learning_curves.png"]
    assert capsys.readouterr().out == ""  # the same outputs, saved or not


def test_test_errors_figure_reads_at_the_readme_width(tmp_path):
    from PIL import Image

    names = experiments.expand(["all"])  # every row measured on the test pairs
    errors = {name: [50 + i + w // 3 for w in WIGGLE[:3]] for i, name in enumerate(names)}
    found = tables.published(load(write_records(tmp_path / "results", errors)), TINY)
    figure = figures.test_errors_figure(found)
    axes = figure.axes[0]
    shown = [label.get_text() for label in axes.get_yticklabels()]
    sweep = [name for _, name in sorted(experiments.SWEEP.items()) if name.startswith("ws-aux-c")]
    beside = {"ws-plain": ["ws-plain-first"], "ws": ["ws-first", "ws-holdout"],
              "ws-aux": ["ws-aux-first", "ws-aux-holdout"], "same-budget": ["same-budget-holdout"],
              "same-compute": ["same-compute-holdout"]}
    beside |= {name: [f"{name}-first"] for name in ("ws-aux-c0.5", "ws-aux-c0.75",
                                                      "ws-aux-d0.25", "ws-aux-d0.75")}
    assert shown == [shown_name for name in ["baseline", "ws-plain", "ws", "ws-aux", *sweep,
                                             "ws-aux-d0.25", "ws-aux-d0.75", "best", "same-budget",
                                             "same-compute"]
                     for shown_name in (name, *beside.get(name, []))]
    assert axes.get_ylim()[0] > axes.get_ylim()[1]  # the first configuration on top
    marked = next(line for line in axes.get_lines() if line.get_label() == "the report's mean")
    assert sorted(marked.get_xdata()) == sorted(
        row["report"][4] for row in experiments.CATALOGUE if row["report"])
    figures.show(figure, tmp_path, "test_errors.png")
    width, height = Image.open(tmp_path / "test_errors.png").size
    assert width <= 830 and height < 3 * width


def test_learning_curves_label_the_epochs_of_every_panel(tmp_path):
    errors = {name: [40, 41] for name in ("baseline", "ws-plain", "ws", "ws-aux", "ws-aux-c0.5",
                                          "ws-aux-d0.25")}
    found = tables.published(load(write_records(tmp_path / "results", errors)), TINY)
    figure = figures.learning_curves_figure(found)   # 4 columns: 4 panels, then 2
    figure.canvas.draw()
    panels = [axis for axis in figure.axes if axis.get_visible()]
    assert [axis.get_title() for axis in panels] == [  # the alpha sweep's rows in alpha order
        f"{name} (2 rounds)" for name in ("baseline", "ws-plain", "ws", "ws-aux", "ws-aux-c0.5",
                                          "ws-aux-d0.25")]
    for axis in panels:  # a row above an empty panel keeps its epochs
        assert any(t.get_visible() and t.get_text() for t in axis.get_xticklabels())
        assert axis.get_xlabel() == "epoch"


def run_curves(record, monkeypatch):
    """The figure helpers.notebook.run_curves shows."""
    import helpers.notebook

    shown = []
    monkeypatch.setattr(figures, "show", shown.append)
    helpers.notebook.run_curves(record)
    return shown[0]


@pytest.mark.slow  # starts a process
def test_a_runs_notebook_draws_its_curves_without_pandas_or_scipy():
    """A run's kernel imports what its notebook shows and draws, and no more: pandas,
    scipy.stats and statsmodels (the summary's) cost a second more at every kernel start."""
    import subprocess
    import sys

    record = FIXTURE / "ws-aux" / "seed-0.json"
    code = ("import json, sys, matplotlib; matplotlib.use('Agg')\n"
            "from helpers import notebook\n"
            "from helpers.science import losses, models\n"
            "from helpers.science.training import run_experiment\n"
            f"record = json.load(open({str(record)!r}))\n"
            "notebook.run_curves(record); notebook.loss_weights(record)\n"
            "print(sorted(m for m in ('pandas', 'scipy', 'statsmodels') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_one_record_draws_without_a_warning(tmp_path, recwarn, monkeypatch):
    found = tables.published(load(write_records(tmp_path / "results", {"ws": [40]})), TINY)
    for figure in (figures.test_errors_figure(found), figures.learning_curves_figure(found),
                   run_curves(found.records[0], monkeypatch)):
        figure.canvas.draw()
    assert not [w for w in recwarn if "layout" in str(w.message).lower()]


def test_curves_of_one_epoch_show_their_points(monkeypatch):
    records = copy.deepcopy(fixture().records)
    for record in records:
        record["history"] = record["history"][:1]
    found = tables.Published(FIXTURE, records)
    for figure in (figures.learning_curves_figure(found), run_curves(records[0], monkeypatch)):
        lines = [line for axis in figure.axes for line in axis.get_lines()]
        assert lines and all(line.get_marker() == "o" for line in lines)
        assert all(len(line.get_xdata()) == 1 for line in lines)
    many = copy.deepcopy(records[0])
    many["history"] = [dict(many["history"][0], epoch=i + 1) for i in range(20)]
    lines = run_curves(many, monkeypatch).axes[1].get_lines()
    assert all(line.get_marker() in (None, "None", "") for line in lines)


# --- what a row is, read from its parameters ----------------------------------------------------
def test_the_discounted_weightings_are_eq2_and_eq3_rows_not_the_first_rebuild():
    names = [before for before, after, _ in experiments.COMPARISONS if after == experiments.EQ1]
    assert "ws-aux-first" in names  # tested against eq. (1) too, but it is eq. (1) itself
    assert tables.discounted(names) == ["ws-aux-c0.5", "ws-aux-c0.75", "ws-aux-d0.25",
                                        "ws-aux-d0.75"]
    assert tables.computed(["ws-aux", "best", "same-budget", "best-val-linear-head"]) == [
        "best", "same-budget"]
    assert "dropout_2d" not in tables.params("same-budget")  # its network has no 2D dropout
    assert tables.params("ws")["dropout_2d"] == 0.3


@pytest.mark.parametrize("given", ['{"epochs": 2, "n_pairs": 100}', "{'epochs': 2, 'n_pairs': 100}",
                                   {"epochs": 2, "n_pairs": 100}])
def test_overrides_given_as_text_count_as_the_dict_they_write(given):
    # papermill's `-p overrides '{"epochs": 2}'` gives the notebook a string
    assert tables.parsed_overrides(given) == {"epochs": 2, "n_pairs": 100}
    assert len(tables.published(load(FIXTURE), given).records) == len(fixture().records)
    assert tables.parsed_overrides("") == {}


@pytest.mark.parametrize("given, fragment", [("epochs=2", "is not a dict of run parameters"),
                                             ('{"epoch": 2}', "unknown parameter 'epoch'")])
def test_overrides_text_that_is_no_dict_is_refused_in_one_line(given, fragment):
    from helpers import UsageError

    with pytest.raises(UsageError, match=fragment):
        tables.parsed_overrides(given)


def test_a_table_for_people_cuts_no_cell_and_has_one_header_row():
    import pandas as pd

    long = "best's deeper digit network, 24 and 48 channels, dense 64, dropout 0.25 and eq. (1)"
    frame = pd.DataFrame({"what": [long, long, "short"], "error %": ["1.00", "2.00", "3.00"]},
                         index=pd.MultiIndex.from_tuples([("P1", "a"), ("P1", "b"), ("P2", "a")],
                                                         names=["point", "reading"]))
    html = tables.for_people(frame)._repr_html_()
    assert html.count(long) == 2 and "..." not in html and "…" not in html
    assert html.count("<tr") == 4  # one header row, three rows: no row of index names
    assert [h for h in re.findall(r"<th>([^<]*)</th>", html)] == [
        "point", "reading", "what", "error %"]
    assert re.findall(r"<td>(P\d?)</td>", html) == ["P1", "P2"]  # a repeated point shown once
    assert long in repr(tables.for_people(frame))

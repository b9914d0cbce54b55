from pathlib import Path

import pytest

from helpers import CATALOGUE, UsageError, resolve
from helpers.catalogue import DEFAULTS, EXPERIMENTS
from helpers.cli import main

REPORT_NAMES = ["baseline", "ws-plain", "ws", "ws-aux", "ws-aux-c0.5", "ws-aux-c0.75",
                "ws-aux-d0.25", "ws-aux-d0.75"]


def test_catalogue_has_the_report_configurations():
    assert [row["name"] for row in CATALOGUE][:8] == REPORT_NAMES
    for row in CATALOGUE:
        resolve(row["name"])  # every row's parameters are valid


def test_defaults_are_the_report_protocol():
    assert (DEFAULTS["lr"], DEFAULTS["batch_size"], DEFAULTS["epochs"], DEFAULTS["n_pairs"],
            DEFAULTS["optimizer"]) == (0.1, 100, 25, 1000, "sgd")


def test_rows_mean_what_the_report_says():
    assert resolve("baseline")["model"] == "baseline"
    plain, ws = resolve("ws-plain"), resolve("ws")
    assert (plain["batch_norm"], plain["dropout"], plain["dropout_2d"]) == (False, 0, 0)
    assert (ws["batch_norm"], ws["dropout"], ws["dropout_2d"], ws["weighting"]) == \
        (True, 0.5, 0.3, "none")
    assert (resolve("ws-aux-c0.75")["weighting"], resolve("ws-aux-c0.75")["alpha"]) == ("eq2", 0.75)
    assert (resolve("ws-aux-d0.25")["weighting"], resolve("ws-aux-d0.25")["alpha"]) == \
        ("eq3-geometric", 0.25)  # the readings study's P5 (the first rebuild: linear)
    assert resolve("ws-aux-d0.25-first")["weighting"] == "eq3"
    assert EXPERIMENTS["ws-aux"]["report"][4] == 6.9


def test_values_are_converted_from_text():
    params = resolve("ws-aux-c0.5", epochs="3", lr="0.05", batch_norm="false", alpha=1)
    assert params["epochs"] == 3 and params["lr"] == 0.05 and params["batch_norm"] is False
    assert isinstance(params["alpha"], float)


@pytest.mark.parametrize("overrides, fragment", [
    ({"epochs": 0}, "epochs must be from 1 to 10000"),
    ({"epochs": "ten"}, "epochs must be an integer"),
    ({"epochs": 2.5}, "epochs must be an integer"),
    ({"lr": 0}, "lr must be in (0, 100]"),
    ({"lr": "nan"}, "lr must be a finite number"),
    ({"batch_size": 0}, "batch_size must be from 1"),
    ({"batch_size": 2000}, "batch_size must be from 1 to n_pairs"),
    ({"n_pairs": 0}, "n_pairs must be from 1 to 5000"),
    ({"n_pairs": 6000}, "n_pairs must be from 1 to 5000"),
    ({"alpha": -0.1}, "alpha must be >= 0"),
    ({"dropout": 1.0}, "dropout must be in [0, 1)"),
    ({"dropout_2d": -0.2}, "dropout_2d must be in [0, 1)"),
    ({"weighting": "eq4"}, "weighting must be one of none, eq1, eq2, eq3"),
    ({"device": "tpu"}, "device must be one of auto, cpu, cuda"),
    ({"batch_norm": "maybe"}, "batch_norm must be true or false"),
    ({"seed": -1}, "seed must be from 0 to"),
    ({"learning_rate": 0.1}, "unknown parameter 'learning_rate'"),
])
def test_bad_values_are_rejected_with_one_line(overrides, fragment):
    with pytest.raises(UsageError) as error:
        resolve("ws-aux-c0.5", **overrides)
    assert fragment in str(error.value) and "\n" not in str(error.value)


def test_unknown_experiment_names_the_choices():
    with pytest.raises(UsageError, match="unknown experiment 'ws-aux2'.*ws-aux-c0.5"):
        resolve("ws-aux2")


def test_baseline_cannot_take_an_auxiliary_loss():
    with pytest.raises(UsageError, match="no digit outputs"):
        resolve("baseline", weighting="eq1")


def test_cli_list_prints_the_catalogue_group_by_group(capsys):
    """`list` is a screen: one line a group (its size, seeds, folder, first rows); a group's
    rows and the run parameters on request; `run --help` names the groups."""
    from helpers.catalogue.experiments import GROUPS

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert len(out.splitlines()) < 20
    for group in GROUPS:
        assert f"\n  {group} " in out
    assert main(["list", "report"]) == 0
    out = capsys.readouterr().out
    for name in REPORT_NAMES:
        assert name in out
    assert "20.1%" in out  # the baseline's published test error beside it
    assert main(["list", "parameters"]) == 0
    assert "label_smoothing" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    wrapped = "".join(capsys.readouterr().out.split())  # argparse wraps at spaces and hyphens
    assert "".join(f"({', '.join(GROUPS)})".split()) in wrapped


def test_cli_usage_error_is_one_line_exit_2(capsys):
    assert main(["frobnicate"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1


@pytest.mark.parametrize("experiment, overrides, reader", [
    ("ws", {"alpha": 0.5}, "weighting eq2 or eq3"),          # ws trains no digit loss
    ("ws-aux", {"alpha": 0.5}, "weighting eq2 or eq3"),      # eq. (1) has no alpha
    ("baseline", {"dropout": 0.2}, "a weight-sharing model"),
    ("best", {"batch_norm": False}, "model weight_sharing"),
    ("ws-aux", {"optimizer": "adam", "momentum": 0.9}, "optimizer sgd"),
])
def test_a_value_the_run_would_not_read_is_refused(experiment, overrides, reader):
    with pytest.raises(UsageError, match="would change nothing") as refused:
        resolve(experiment, **overrides)
    assert reader in str(refused.value) and "\n" not in str(refused.value)


def test_the_same_values_are_accepted_where_they_are_read():
    assert resolve("ws-aux", weighting="eq2", alpha=0.5)["alpha"] == 0.5
    assert resolve("ws-aux-c0.5", alpha=0.25)["alpha"] == 0.25
    assert resolve("ws", dropout=0.2)["dropout"] == 0.2


@pytest.fixture(scope="module")
def validation():
    """The committed validation records (those of trainings that diverged among them)."""
    from pathlib import Path

    from helpers.runs import records

    return records.load(Path(__file__).resolve().parent.parent / "validation")


@pytest.fixture(scope="module")
def validation_frame(validation):
    """The committed validation records of trainings that ended, as one table."""
    return validation.frame


def test_every_round_of_the_readings_study_is_recorded_diverged_or_not(validation):
    """A training that diverged is an outcome of the study: each reading row of both rounds has
    a record for each of its rounds, and only those that diverged make a reading ineligible."""
    from helpers.publish import readings

    for round2 in (False, True):
        table = readings.readings_table(validation.frame, round2, validation.diverged)
        assert ((table["rounds"] + table["diverged"]) == 10).all(), table
        assert set(table.loc[table["diverged"] > 0, "reading"]) == {"kaiming"}
        metrics = readings.point_metrics(table)
        kaiming = metrics[metrics["reading"] == "kaiming"]
        assert len(kaiming) == 1 and kaiming["metric_pct"].isna().all()
    assert {r["experiment"] for r in validation.diverged} == {
        "val-ws-plain-kaiming", "val-ws-plain-hidden512-kaiming"}


def test_round_1_taken_readings_are_the_rules_outcome_over_the_committed_records(
        validation_frame, validation):
    """The catalogue's round-2 rows start from what the rule takes over round 1's records."""
    from helpers.catalogue import experiments
    from helpers.publish import readings

    metrics = readings.point_metrics(readings.readings_table(validation_frame, diverged=validation.diverged))
    taken = {point: reading for point, reading in readings.taken(metrics).items()
             if reading != "first"}
    assert taken == readings.ROUND1_TAKEN


def read(name, **overrides):
    """The parameters row `name` runs with (those it reads)."""
    from helpers.catalogue.parameters import reads

    params = resolve(name, **overrides)
    return {key: params[key] for key in reads(params)}


def test_a_combined_row_takes_every_taken_reading_of_the_points_that_affect_it():
    combined = read("val-ws-aux-d0.25-combined")
    assert (combined["comparison"], combined["head_hidden"], combined["digit_hidden"],
            combined["init"], combined["batch_norm_outputs"]) == ("hidden", 512, 256, "xavier", True)
    assert (combined["weighting"], combined["alpha"]) == ("eq3-geometric", 0.25)
    plain = read("val-ws-plain-combined")  # P2 and P5 do not affect ws-plain: no batch norm
    assert (plain["weighting"], plain["init"], plain["batch_norm"]) == ("none", "xavier", False)
    assert "batch_norm_outputs" not in plain


def test_each_reading_row_is_its_first_rebuild_row_with_the_readings_parameters():
    """The frozen rows of round 1 are what the study's design says: the first rebuild's row of
    the same configuration with the reading's parameters, nothing else."""
    from helpers.catalogue.parameters import reads
    from helpers.publish import readings

    checked = 0
    for point, (_, bases, options) in readings.READINGS.items():
        for reading, change in options.items():
            for base in bases:
                expected = {**resolve(f"val-{base}-first"), **change}
                assert read(f"val-{base}-{reading}") == {key: expected[key]
                                                         for key in reads(expected)}
                checked += 1
    assert checked == sum(len(options) * len(bases) for _, bases, options in
                          readings.READINGS.values())


def test_round_2_base_is_the_rules_outcome_of_step_a(validation_frame, validation):
    """B is the combination of round 1's readings if its metric is lower than the best single
    change's, else that change alone (docs/readings.md, rule 4)."""
    from helpers.catalogue import experiments
    from helpers.publish import readings

    frame = validation_frame
    metrics = readings.point_metrics(readings.readings_table(frame, diverged=validation.diverged))
    changes = metrics[metrics["taken"] & (metrics["reading"] != "first")]
    best = changes.sort_values("vs_first").iloc[0]
    combined = readings.combined_metric(frame)
    expected = (readings.ROUND1_TAKEN if combined < best["metric_pct"]
                else {best["point"]: best["reading"]})
    assert readings.ROUND2_BASE == expected


def test_round_2_changes_are_the_rules_outcome_of_step_b(validation_frame, validation):
    from helpers.catalogue import experiments
    from helpers.publish import readings

    metrics = readings.point_metrics(readings.readings_table(validation_frame, round2=True,
                                                             diverged=validation.diverged))
    taken = readings.taken(metrics)
    changes = {point: reading for point, reading in taken.items()
               if reading != readings.ROUND2_BASE.get(point, "first")}
    assert changes == readings.ROUND2_TAKEN


def test_round_2_combination_is_the_rules_outcome_of_step_c(validation_frame, validation):
    """(c): the combination of (b)'s changes is taken when its metric over ws-plain, ws and
    ws-aux is lower than the best single change of (b)'s; else that change alone."""
    from helpers.catalogue import experiments
    from helpers.publish import readings

    metrics = readings.point_metrics(readings.readings_table(validation_frame, round2=True,
                                                             diverged=validation.diverged))
    changes = metrics[metrics["taken"] & metrics.apply(
        lambda m: m["reading"] != readings.ROUND2_BASE.get(m["point"], "first"), axis=1)]
    best = changes.sort_values("vs_first").iloc[0]
    combined = readings.combined_metric(validation_frame, tag=f"{readings.ROUND2_TAG}-combined")
    single = readings.change_metric(validation_frame, best["point"], best["reading"])
    expected = ({**readings.ROUND2_BASE, **readings.ROUND2_TAKEN} if combined < single
                else {**readings.ROUND2_BASE, best["point"]: best["reading"]})
    assert readings.CHOSEN_READINGS == expected


@pytest.mark.parametrize("row", ["ws-plain", "ws", "ws-aux", "ws-aux-c0.5", "ws-aux-c0.75",
                                 "ws-aux-d0.25", "ws-aux-d0.75"])
def test_a_report_row_is_what_the_study_chose_and_its_first_row_the_first_rebuild(row):
    """Each weight-sharing row of Tables III/IV runs exactly the validation row of round 2 (c)
    that the rule took, and its `-first` row the first rebuild's validation row."""
    from helpers.publish import readings

    def same(name, validation_row):
        ours, theirs = read(name), read(validation_row)
        return {k: v for k, v in ours.items() if k != "evaluate_on"} == \
            {k: v for k, v in theirs.items() if k != "evaluate_on"}

    assert readings.CHOSEN_READINGS == {**readings.ROUND2_BASE, **readings.ROUND2_TAKEN}
    assert same(row, f"val-{row}-{readings.ROUND2_TAG}-combined")
    assert same(f"{row}-first", f"val-{row}-first")


def test_the_sweep_takes_the_chosen_readings_and_held_out_rows_copy_their_row():
    assert resolve("ws-aux-c4") == {**resolve("ws-aux"), "experiment": "ws-aux-c4",
                                    "weighting": "eq2", "alpha": 4.0}
    for name in ("ws", "ws-aux", "same-budget"):
        assert {**resolve(f"{name}-holdout"), "experiment": name} == resolve(name)
        assert EXPERIMENTS[f"{name}-holdout"]["seeds"] == "1000-1009"


# --- the catalogue as data: frozen studies, one-line rows, the defaults as the report's network --
REPO = Path(__file__).resolve().parent.parent
FROZEN_GROUPS = {"readings", "round2", "diagnosis", "ablation", "budget-search", "compute-search",
                 "first"}


def test_every_committed_record_is_its_rows_own_run():
    """Each record of results/ and validation/ is its catalogue row's run, parameter for
    parameter (those either reads), at one of the row's seeds: the declared catalogue is what
    made the records."""
    import json

    from helpers.catalogue.parameters import differing
    from helpers.catalogue.seeds import parse_seeds

    paths = sorted([*(REPO / "results").glob("*/seed-*.json"),
                    *(REPO / "validation").glob("*/seed-*.json")])
    assert len(paths) > 1000
    for path in paths:
        params = json.loads(path.read_text())["params"]
        name, seed = params["experiment"], params["seed"]
        assert differing(params, resolve(name, seed=seed)) == [], path
        assert seed in parse_seeds(EXPERIMENTS[name]["seeds"]), path


def test_a_frozen_row_writes_every_parameter_it_reads():
    """The finished studies' rows (studies.jsonl, one a line) name every parameter they read, so
    that no change of a default moves them; the published rows set only what differs."""
    from helpers.catalogue import experiments
    from helpers.catalogue.parameters import reads

    lines = (REPO / "helpers" / "catalogue" / "studies.jsonl").read_text().splitlines()
    frozen = [row for row in CATALOGUE if set(row["group"]) & FROZEN_GROUPS]
    assert len(lines) == len(frozen) > 100
    for row in frozen:
        assert set(reads(resolve(row["name"]))) <= set(row["params"]), row["name"]
    for name in experiments.REPORT_EXPERIMENTS:
        assert all(DEFAULTS[key] != value for key, value in EXPERIMENTS[name]["params"].items()
                   if key != "weighting"), name


def test_the_defaults_are_the_report_network_the_report_rows_run():
    from helpers.publish import readings

    assert resolve("ws-aux") == {**DEFAULTS, "experiment": "ws-aux"}
    assert (DEFAULTS["comparison"], DEFAULTS["head_hidden"], DEFAULTS["batch_norm_outputs"],
            DEFAULTS["digit_hidden"]) == ("hidden", 512, True, 256)
    for point, reading in readings.CHOSEN_READINGS.items():  # what the readings study chose
        change = readings.READINGS[point][2][reading]
        assert {key: DEFAULTS[key] for key in change if key != "weighting"} == \
            {key: value for key, value in change.items() if key != "weighting"}


REPORT_NETWORK_ROWS = {"ws-plain", "ws", "ws-aux", "ws-aux-c0.5", "ws-aux-c0.75", "ws-aux-d0.25",
                       "ws-aux-d0.75", "ws-aux-c0.1", "ws-aux-c0.25", "ws-aux-c1.5", "ws-aux-c2",
                       "ws-aux-c4", "ws-aux-c8", "ws-holdout", "ws-aux-holdout"}


def test_changing_the_report_networks_width_moves_exactly_the_rows_that_run_it(monkeypatch):
    """One edit, the default of digit_width, moves the report's weight-sharing rows, the sweep
    and their held-out rows; never a frozen study's row, `best`, `same-budget` or the baseline."""
    before = {row["name"]: read(row["name"]) for row in CATALOGUE}
    monkeypatch.setitem(DEFAULTS, "digit_width", 48)
    moved = {row["name"] for row in CATALOGUE if read(row["name"]) != before[row["name"]]}
    assert moved == REPORT_NETWORK_ROWS
    assert all(read(name)["digit_width"] == 48 for name in moved)


def test_a_row_added_beside_the_others_is_one_line(monkeypatch):
    """`ws-aux-c0.9` written as one line like ws-aux-c0.75's runs ws-aux-c0.75's network and
    training with alpha 0.9, and `list` shows it."""
    from helpers.catalogue import experiments

    line = experiments.row("ws-aux-c0.9", "sweep", experiments.AUX, "auxiliary loss, eq. (2), "
                           "constant alpha = 0.9", weighting="eq2", alpha=0.9)
    monkeypatch.setitem(experiments.EXPERIMENTS, "ws-aux-c0.9", line)
    monkeypatch.setattr(experiments, "CATALOGUE", [*CATALOGUE, line])
    assert read("ws-aux-c0.9") == {**read("ws-aux-c0.75"), "alpha": 0.9}
    assert main(["list", "ws-aux-c0.9"]) == 0


@pytest.mark.slow
def test_a_row_added_as_one_line_lists_and_runs(tmp_path, mnist_root):
    """In a copy of the project, the line of `ws-aux-c0.9` added beside `ws-aux-c0.75`'s: `list`
    shows it and `run ws-aux-c0.9 -p epochs 1 -p n_pairs 100` writes its record."""
    import json
    import os
    import shutil
    import subprocess
    import sys

    copy = tmp_path / "project"
    for folder in ("helpers", "notebooks"):
        shutil.copytree(REPO / folder, copy / folder, ignore=shutil.ignore_patterns("__pycache__"))
    source = copy / "helpers" / "catalogue" / "experiments.py"
    lines = source.read_text().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.lstrip().startswith('row("ws-aux-c0.75"'))
    lines.insert(at + 1, '    row("ws-aux-c0.9", "sweep", AUX, "auxiliary loss, eq. (2), constant '
                         'alpha = 0.9", weighting="eq2", alpha=0.9),\n')
    source.write_text("".join(lines))
    environment = {**os.environ, "PYTHONPATH": str(copy), "MNIST_ROOT": mnist_root,
                   "HELPERS_PROGRESS": "0"}

    def helpers(*args):
        return subprocess.run([sys.executable, "-m", "helpers", *args], cwd=copy, env=environment,
                              capture_output=True, text=True, timeout=600)

    listed = helpers("list", "ws-aux-c0.9")
    assert listed.returncode == 0 and "alpha=0.9" in listed.stdout, listed.stderr
    ran = helpers("run", "ws-aux-c0.9", "--seeds", "0", "-p", "epochs", "1", "-p", "n_pairs",
                  "100", "--results", str(tmp_path / "records"), "--runs", str(tmp_path / "runs"))
    assert ran.returncode == 0, ran.stderr
    record = json.loads((tmp_path / "records" / "ws-aux-c0.9" / "seed-0.json").read_text())
    expected = {**resolve("ws-aux-c0.75", epochs=1, n_pairs=100), "alpha": 0.9,
                "experiment": "ws-aux-c0.9"}
    assert {key: record["params"][key] for key in expected if key not in ("data_root", "device")} \
        == {key: value for key, value in expected.items() if key not in ("data_root", "device")}

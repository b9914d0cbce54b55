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
def validation_frame():
    """The committed validation records, as one table."""
    from pathlib import Path

    from helpers.runs import records

    return records.load(Path(__file__).resolve().parent.parent / "validation").frame


def test_round_1_taken_readings_are_the_rules_outcome_over_the_committed_records(
        validation_frame):
    """The catalogue's round-2 rows start from what the rule takes over round 1's records."""
    from helpers.catalogue import experiments
    from helpers.publish import readings

    metrics = readings.point_metrics(readings.readings_table(validation_frame))
    taken = {point: reading for point, reading in readings.taken(metrics).items()
             if reading != "first"}
    assert taken == experiments.ROUND1_TAKEN


def test_a_combined_row_takes_every_taken_reading_of_the_points_that_affect_it():
    combined = resolve("val-ws-aux-d0.25-combined")
    assert (combined["comparison"], combined["head_hidden"], combined["digit_hidden"],
            combined["init"], combined["batch_norm_outputs"]) == ("hidden", 512, 256, "xavier", True)
    assert (combined["weighting"], combined["alpha"]) == ("eq3-geometric", 0.25)
    plain = resolve("val-ws-plain-combined")  # P2 and P5 do not affect ws-plain
    assert (plain["batch_norm_outputs"], plain["weighting"], plain["init"]) == (False, "none", "xavier")


def test_round_2_base_is_the_rules_outcome_of_step_a(validation_frame):
    """B is the combination of round 1's readings if its metric is lower than the best single
    change's, else that change alone (docs/readings.md, rule 4)."""
    from helpers.catalogue import experiments
    from helpers.publish import readings

    frame = validation_frame
    metrics = readings.point_metrics(readings.readings_table(frame))
    changes = metrics[metrics["taken"] & (metrics["reading"] != "first")]
    best = changes.sort_values("vs_first").iloc[0]
    combined = readings.combined_metric(frame)
    expected = (experiments.ROUND1_TAKEN if combined < best["metric_pct"]
                else {best["point"]: best["reading"]})
    assert experiments.ROUND2_BASE == expected


def test_round_2_changes_are_the_rules_outcome_of_step_b(validation_frame):
    from helpers.catalogue import experiments
    from helpers.publish import readings

    metrics = readings.point_metrics(readings.readings_table(validation_frame, round2=True))
    taken = readings.taken(metrics)
    changes = {point: reading for point, reading in taken.items()
               if reading != experiments.ROUND2_BASE.get(point, "first")}
    assert changes == experiments.ROUND2_TAKEN


def test_round_2_combination_is_the_rules_outcome_of_step_c(validation_frame):
    """(c): the combination of (b)'s changes is taken when its metric over ws-plain, ws and
    ws-aux is lower than the best single change of (b)'s; else that change alone."""
    from helpers.catalogue import experiments
    from helpers.publish import readings

    metrics = readings.point_metrics(readings.readings_table(validation_frame, round2=True))
    changes = metrics[metrics["taken"] & metrics.apply(
        lambda m: m["reading"] != experiments.ROUND2_BASE.get(m["point"], "first"), axis=1)]
    best = changes.sort_values("vs_first").iloc[0]
    combined = readings.combined_metric(validation_frame, tag=f"{experiments.ROUND2_TAG}-combined")
    single = readings.change_metric(validation_frame, best["point"], best["reading"])
    expected = ({**experiments.ROUND2_BASE, **experiments.ROUND2_TAKEN} if combined < single
                else {**experiments.ROUND2_BASE, best["point"]: best["reading"]})
    assert experiments.CHOSEN_READINGS == expected


@pytest.mark.parametrize("row", ["ws-plain", "ws", "ws-aux", "ws-aux-c0.5", "ws-aux-c0.75",
                                 "ws-aux-d0.25", "ws-aux-d0.75"])
def test_a_report_row_is_what_the_study_chose_and_its_first_row_the_first_rebuild(row):
    """Each weight-sharing row of Tables III/IV trains exactly the validation row of round 2 (c)
    that the rule took, and its `-first` row the first rebuild's validation row."""
    from helpers.catalogue import experiments

    def same(name, validation_row):
        ours, theirs = resolve(name), resolve(validation_row)
        return {k: v for k, v in ours.items() if k not in ("experiment", "evaluate_on")} == \
            {k: v for k, v in theirs.items() if k not in ("experiment", "evaluate_on")}

    assert experiments.CHOSEN_READINGS == {**experiments.ROUND2_BASE, **experiments.ROUND2_TAKEN}
    assert same(row, f"val-{row}-{experiments.ROUND2_TAG}-combined")
    assert same(f"{row}-first", f"val-{row}-first")


def test_the_sweep_takes_the_chosen_readings_and_held_out_rows_copy_their_row():
    assert resolve("ws-aux-c4") == {**resolve("ws-aux"), "experiment": "ws-aux-c4",
                                    "weighting": "eq2", "alpha": 4.0}
    for name in ("ws", "ws-aux", "same-budget"):
        assert {**resolve(f"{name}-holdout"), "experiment": name} == resolve(name)
        assert EXPERIMENTS[f"{name}-holdout"]["seeds"] == "1000-1009"

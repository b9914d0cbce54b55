"""`same-budget` and its search: the report's training budget kept exactly, the network
within 80,000 parameters, and every row of the search held to the same budget."""

import re

import pytest

from helpers import resolve
from helpers.catalogue import experiments
from helpers.science.models import DeepDigitNet, build_model, count_parameters

# The report's Table I, written out here rather than read from the catalogue: the test fails if
# the catalogue's budget, or a default it relies on, ever moves away from it.
TABLE_I = {"optimizer": "sgd", "lr": 0.1, "momentum": 0.0, "weight_decay": 0.0,
           "schedule": "constant", "batch_size": 100, "epochs": 25, "n_pairs": 1000,
           "augment_shift": 0.0, "augment_rotation": 0.0, "augment_scale": 0.0}
SEARCH = [row["name"] for row in experiments.CATALOGUE if "budget-search" in row["group"]]


@pytest.mark.parametrize("name", ["same-budget", *SEARCH])
def test_the_reports_budget_is_kept(name):
    params = resolve(name)
    assert {key: params[key] for key in TABLE_I} == TABLE_I
    assert count_parameters(build_model(params)) <= 80_000


def test_same_budget_is_measured_on_the_test_pairs_and_its_search_on_validation_pairs():
    assert resolve("same-budget")["evaluate_on"] == "test"
    assert experiments.get("same-budget")["seeds"] == "0-9"
    assert len(SEARCH) >= 6
    for name in SEARCH:
        assert resolve(name)["evaluate_on"] == "validation" and name.startswith("budget-val-")
        assert experiments.get(name)["seeds"] in ("100-104", "100-109")


def test_the_deeper_digit_network_is_sized_by_width_and_hidden():
    # 4 convolutions 3x3 without bias (w, w, 2w, 2w channels), each with a batch norm (2 per
    # channel), a dense layer 2w*3*3 -> h without bias and its batch norm, the output h -> 10
    def expected(w, h):
        convolutions = 9 * (w + w * w + w * 2 * w + 2 * w * 2 * w) + 2 * (w + w + 2 * w + 2 * w)
        return convolutions + 2 * w * 9 * h + 2 * h + 10 * h + 10

    for w, h in ((24, 64), (32, 128), (16, 128)):
        assert count_parameters(DeepDigitNet(width=w, hidden=h)) == expected(w, h)
    params = resolve("budget-val-deep24-h64")
    assert count_parameters(build_model(params)) == expected(24, 64) == 65_218
    assert count_parameters(build_model(resolve("best"))) == expected(32, 128) == 140_458


def test_a_size_the_report_network_reads_is_read_by_the_deeper_one():
    params = resolve("best", digit_width=16, digit_hidden=32)
    model = build_model(params)
    assert model.digit_net.layers[0].out_channels == 16
    assert count_parameters(model) < count_parameters(build_model(resolve("best")))


@pytest.mark.slow
def test_same_budget_notebook_writes_its_record_and_checks_the_rule(tmp_path, mnist_root):
    import json
    from pathlib import Path

    import papermill

    from helpers.runs.records import read_record, record_path

    repo = Path(__file__).resolve().parent.parent
    results, output = tmp_path / "results", tmp_path / "same_budget.ipynb"
    papermill.execute_notebook(
        str(repo / "notebooks" / "same_budget.ipynb"), str(output), kernel_name="python3",
        cwd=str(tmp_path), progress_bar=False,
        parameters={"experiment": "same-budget", "seed": 2, "epochs": 1, "data_root": mnist_root,
                    "results_dir": str(results)})
    record = read_record(record_path(results, "same-budget", 2))
    assert record["params"]["epochs"] == 1 and record["n_parameters"] == 65_218
    cells = json.loads(output.read_text())["cells"]
    text = "\n".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
                     + "".join(o.get("data", {}).get("text/markdown", ""))
                     for c in cells for o in c.get("outputs", []))
    assert f"({record['test_errors']} of 1000 pairs)" in text and "65,218 trainable" in text
    # the budget table flags the one term changed here (and the FLOPs, several times ws-aux's)
    assert re.search(r"\nepochs +1 +25 +no\n", text)
    assert re.search(r"\nlearning rate +0.1 +0.1 +yes\n", text)


# --- same-compute: the report's whole budget, ws-aux's parameters and FLOPs at most -------------
COMPUTE = [row["name"] for row in experiments.CATALOGUE
           if "compute-search" in row["group"] or row["name"].startswith("same-compute")]


@pytest.fixture(scope="module")
def ws_aux_spends():
    """(parameters, optimiser steps, training FLOPs) of one training of ws-aux, as its committed
    records count them."""
    import json
    from pathlib import Path

    record = json.loads((Path(__file__).resolve().parent.parent / "results" / "ws-aux" /
                         "seed-0.json").read_text())
    return record["n_parameters"], record["budget"]["steps"], record["budget"]["training_flops"]


@pytest.mark.parametrize("name", COMPUTE)
def test_same_compute_and_its_search_keep_the_whole_budget(name, ws_aux_spends):
    """Each row (and each of its committed records) keeps Table I and spends at most ws-aux's
    trainable parameters, optimiser steps and training FLOPs."""
    from pathlib import Path

    from helpers.runs.records import load
    from helpers.science.training import training_budget

    most_parameters, most_steps, most_flops = ws_aux_spends
    params = resolve(name)
    assert {key: params[key] for key in TABLE_I} == TABLE_I
    budget = training_budget(params)
    assert count_parameters(build_model(params)) <= most_parameters == 99_680
    assert budget["steps"] <= most_steps and budget["training_flops"] <= most_flops
    repo = Path(__file__).resolve().parent.parent
    folder = repo / ("validation" if params["evaluate_on"] == "validation" else "results")
    for record in load(folder, [name]).records:
        assert {key: record["params"][key] for key in TABLE_I} == TABLE_I
        assert record["n_parameters"] <= most_parameters
        assert record["budget"]["steps"] <= most_steps
        assert record["budget"]["training_flops"] <= most_flops

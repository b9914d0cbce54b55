"""The notebooks as users run them: papermill with small parameters, asserting on the records
they write and on the one-line errors they give for bad parameters."""

import json
import re
import types
from pathlib import Path

import nbformat
import papermill
import pytest

from helpers import UsageError
from helpers.notebook import check_names, parameters
from helpers.runs.records import read_record, record_path

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
TINY = {"epochs": 1, "n_pairs": 100}


def execute(notebook, output_dir, **parameters):
    """Run notebooks/`notebook` with papermill into `output_dir`, the kernel working there."""
    output = Path(output_dir) / notebook
    papermill.execute_notebook(str(NOTEBOOKS / notebook), str(output), parameters=parameters,
                               kernel_name="python3", cwd=str(output_dir), progress_bar=False,
                               log_output=False)
    return json.loads(output.read_text())


def printed(notebook_json):
    """Everything the notebook printed or displayed as text, in order."""
    texts = []
    for cell in notebook_json["cells"]:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", "") if isinstance(output.get("text", ""), str)
                         else "".join(output["text"]))
            data = output.get("data", {})
            for kind in ("text/plain", "text/markdown"):
                if kind in data:
                    texts.append("".join(data[kind]))
    return "\n".join(texts)


# --- the parameters helper, in this process --------------------------------------------------
def notebook_globals(**values):
    base = {name: None for name in ("seed", "n_pairs", "epochs", "lr", "batch_size", "optimizer",
                                    "model", "weighting", "alpha", "batch_norm", "dropout",
                                    "dropout_2d", "device", "threads", "data_root", "results_dir")}
    # what an IPython kernel's globals also hold: history (papermill's cell of the parameters
    # `values` in it), shell helpers, imports, functions
    injected = "# Parameters\n" + "".join(f"{name} = {value!r}\n" for name, value in values.items())
    base.update({"In": ["", "import helpers", injected], "Out": {}, "get_ipython": lambda: None,
                 "_i1": "import helpers", "helpers": types.ModuleType("helpers"),
                 "display": print, "seed": 0})
    base.update(values)
    return base


def test_parameters_drop_none_and_apply_the_catalogue():
    params = parameters(notebook_globals(experiment="ws-aux-c0.75", epochs=3),
                        notebook="auxiliary_loss.ipynb")
    assert params["epochs"] == 3 and params["weighting"] == "eq2" and params["alpha"] == 0.75
    assert params["n_pairs"] == 1000 and params["lr"] == 0.1 and params["threads"] == 1


def test_parameters_reject_unknown_names_and_foreign_experiments():
    with pytest.raises(UsageError, match="unknown parameter 'epoch'"):
        parameters(notebook_globals(experiment="ws", epoch=3), notebook="weight_sharing.ipynb")
    with pytest.raises(UsageError, match="runs in notebooks/auxiliary_loss.ipynb.*ws-plain, ws, ws-plain-first, ws-first, "
                                         "ws-holdout here"):
        parameters(notebook_globals(experiment="ws-aux"), notebook="weight_sharing.ipynb")
    with pytest.raises(UsageError, match=r"lr must be in \(0, 100\]"):
        parameters(notebook_globals(experiment="ws", lr=-1), notebook="weight_sharing.ipynb")


def test_a_parameter_the_experiment_would_not_read_is_refused_in_a_notebook():
    # alpha = 0.5 in auxiliary_loss.ipynb with ws-aux (eq. 1) trained with weights (1, 1)
    with pytest.raises(UsageError, match="alpha = 0.5 would change nothing.*weighting eq2"):
        parameters(notebook_globals(experiment="ws-aux", alpha=0.5),
                   notebook="auxiliary_loss.ipynb")
    assert parameters(notebook_globals(experiment="ws-aux", weighting="eq2", alpha=0.5),
                      notebook="auxiliary_loss.ipynb")["alpha"] == 0.5


def test_names_the_notebook_binds_itself_are_not_parameters():
    # re-running the parameters cell interactively, after `params` and `record` exist
    check_names(notebook_globals(params={}, record={}, experiment="ws"),
                known=["experiment", "seed", "n_pairs", "epochs", "lr", "batch_size", "optimizer",
                       "model", "weighting", "alpha", "batch_norm", "dropout", "dropout_2d",
                       "device", "threads", "data_root", "results_dir"],
                ignore=("params", "record"))


# --- the architecture notebooks, executed ----------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("notebook, experiment, expected", [
    ("baseline.ipynb", "baseline", {"model": "baseline", "weighting": "none"}),
    ("weight_sharing.ipynb", "ws-plain", {"batch_norm": False, "dropout": 0.0, "weighting": "none"}),
    ("auxiliary_loss.ipynb", "ws-aux-d0.25", {"weighting": "eq3-geometric", "alpha": 0.25}),
])
def test_notebook_writes_its_record(tmp_path, mnist_root, notebook, experiment, expected):
    results = tmp_path / "results"
    out = execute(notebook, tmp_path, experiment=experiment, seed=3, results_dir=str(results),
                  data_root=mnist_root, **TINY)
    record = read_record(record_path(results, experiment, 3))
    assert record["experiment"] == experiment and record["seed"] == 3
    assert record["params"]["epochs"] == 1 and record["params"]["n_pairs"] == 100
    assert expected.items() <= record["params"].items()
    assert record["n_train"] == record["n_test"] == 100 and len(record["history"]) == 1
    assert [p.name for p in results.rglob("*.json")] == ["seed-3.json"]
    text = printed(out)
    # the printed final errors are the record's
    assert f"test error {record['test_error_rate']:5.2f}% ({record['test_errors']} of 100 pairs)" \
        in text
    assert f"{record['n_parameters']:,} trainable parameters" in text


@pytest.mark.slow
def test_default_results_dir_writes_nothing(tmp_path, mnist_root):
    out = execute("auxiliary_loss.ipynb", tmp_path, data_root=mnist_root, **TINY)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["auxiliary_loss.ipynb"]
    assert "ws-aux, seed 0, 1 epochs" in printed(out) and "record written" not in printed(out)


# Out-of-range values and experiments of another notebook take the same path through
# helpers.notebook.parameters (tested above in this process); one kernel run shows the path.
@pytest.mark.slow
@pytest.mark.parametrize("notebook, bad, message", [
    ("weight_sharing.ipynb", {"epoch": 3}, "unknown parameter 'epoch'"),
])
def test_bad_parameter_fails_with_one_line_before_training(tmp_path, notebook, bad, message):
    results = tmp_path / "results"
    with pytest.raises(papermill.PapermillExecutionError) as failure:
        execute(notebook, tmp_path, results_dir=str(results), **bad)
    assert failure.value.ename == "UsageError" and message in failure.value.evalue
    out = json.loads((tmp_path / notebook).read_text())
    errors = [o for cell in out["cells"] for o in cell.get("outputs", [])
              if o["output_type"] == "error"]
    # one line, no traceback, and nothing trained or written
    assert len(errors) == 1 and len(errors[0]["traceback"]) == 1
    assert "trained in" not in printed(out) and not results.exists()


@pytest.mark.parametrize("notebook", sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb")))
def test_papermill_reads_every_parameter_of_the_parameters_cell(notebook):
    # papermill cannot parse an assignment whose comment holds '=' and then only warns:
    # `--help-notebook` would hide the parameter and `-p` would call it unknown.
    from papermill.translators import PythonTranslator

    cell = next(c for c in nbformat.read(REPO / "notebooks" / notebook, as_version=4).cells
                if "parameters" in c.metadata.get("tags", []))
    assigned = [line.split("=")[0].strip() for line in cell.source.splitlines()
                if re.match(r"^\w+\s*=", line)]
    inferred = [p.name for p in PythonTranslator.inspect(cell)]
    assert inferred == assigned and assigned


# --- a notebook shows the code its run executes ------------------------------------------------
def shown_code(notebook, experiment, monkeypatch):
    """Execute, in this process, the code cells of `notebook` before its training, with
    `experiment` set as papermill sets it (after the parameters cell) -> (the sources it
    displayed as code, in order; the code cells after those)."""
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda *items: shown.extend(
        item.data for item in items if isinstance(item, IPython.display.Code)))
    cells = [cell for cell in nbformat.read(NOTEBOOKS / notebook, 4).cells
             if cell.cell_type == "code"]
    training = next(i for i, cell in enumerate(cells) if "run_experiment(params)" in cell.source)
    namespace = {}
    for cell in cells[:training]:
        exec(cell.source, namespace)
        if "parameters" in cell.metadata.get("tags", []):
            namespace["experiment"] = experiment
    return shown, [cell.source for cell in cells[training:]]


@pytest.mark.parametrize("notebook", ["baseline.ipynb", "weight_sharing.ipynb",
                                      "auxiliary_loss.ipynb", "best.ipynb", "same_budget.ipynb"])
def test_a_notebook_shows_the_code_each_of_its_rows_runs(notebook, monkeypatch, capsys):
    """For every row the notebook runs, the classes and functions it shows are those its run
    builds and calls (the network, digit network and comparison head; the weighting; the loss
    of a step; the training loop), chosen from the run's parameters, the training shown once."""
    import inspect

    from helpers import notebook as helpers_notebook
    from helpers.catalogue import experiments, resolve
    from helpers.science import training

    rows = [row["name"] for row in experiments.CATALOGUE if row["notebook"] == notebook]
    assert rows
    for name in rows:
        shown, after = shown_code(notebook, name, monkeypatch)
        expected = [inspect.getsource(item) for part in ("network", "loss", "training")
                    for item in helpers_notebook.run_code(resolve(name))[part]]
        assert sorted(shown) == sorted(expected), name
        assert shown.count(inspect.getsource(training.train)) == 1
    assert not any("show_code" in source for source in after)  # all of it before the training

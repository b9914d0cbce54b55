"""`python -m helpers summary`: where its outputs go, what the executed notebooks keep, and how
it fails (bad input, a failing notebook, a full disk) without replacing anything.

Most tests execute the notebooks with a stand-in for papermill that adds what papermill adds
(an injected-parameters cell with a random id, timings) and saves a figure where it is told;
one test executes the real notebooks twice over the fixture records.
"""

import json
import os
import shutil
import uuid
from pathlib import Path

import nbformat
import pytest

from helpers import __version__
from helpers.cli import main
from helpers.publish import summary, tables
from helpers.runs.execution import NotebookFailed

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "results"
README_TEXT = f"# A project\n\nintro\n\n{tables.README_START}\nold\n{tables.README_END}\n\nend\n"


def fake_papermill(calls, fail=None):
    """An `execute_notebook` that does what papermill does to a notebook, without a kernel."""
    def execute(notebook, output, parameters, cwd, km=None, environment=None):
        notebook = Path(notebook)
        calls.append((notebook.name, dict(parameters), Path(cwd)))
        read = parameters.get("results_dir", parameters.get("validation_dir"))
        if notebook.name == fail:
            raise NotebookFailed("ValueError: boom")
        nb = nbformat.read(notebook, as_version=4)
        at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
        injected = nbformat.v4.new_code_cell(
            "# Parameters\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in parameters.items()))
        injected.metadata["tags"] = ["injected-parameters"]
        injected.id = uuid.uuid4().hex[:8]
        nb.cells.insert(at + 1, injected)
        nb.metadata["papermill"] = {"start_time": uuid.uuid4().hex, "duration": 1.5,
                                    "parameters": parameters, "input_path": str(notebook),
                                    "output_path": str(output)}
        for count, cell in enumerate(nb.cells, start=1):
            cell.metadata["papermill"] = {"start_time": uuid.uuid4().hex}
            if cell.cell_type == "code":
                cell.metadata["execution"] = {"iopub.status.busy": uuid.uuid4().hex}
                cell.execution_count = count
                cell.outputs = [nbformat.v4.new_output(
                    "stream", text=f"records of {read}\n")]
        if "figures_dir" in parameters:
            figures = Path(cwd) / parameters["figures_dir"]
            (figures / f"{notebook.stem}.png").write_text(f"figure of {read}")
        nbformat.write(nb, output)
    return execute


@pytest.fixture
def calls(monkeypatch):
    made = []
    monkeypatch.setattr(summary, "execute_notebook", fake_papermill(made))
    return made


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A copy of the project's layout (results, notebooks, figures, README) that the summary
    takes for the project."""
    root = tmp_path / "project"
    shutil.copytree(FIXTURE, root / "results")
    (root / "notebooks").mkdir()
    for name in ("summary.ipynb", "analysis.ipynb"):
        shutil.copy(REPO / "notebooks" / name, root / "notebooks")
    (root / "figures").mkdir()
    (root / "figures" / "summary.png").write_text("an old figure")
    (root / "README.md").write_text(README_TEXT)
    for name, value in (("RESULTS", root / "results"), ("NOTEBOOKS", root / "notebooks"),
                        ("FIGURES", root / "figures"), ("README", root / "README.md"),
                        ("REPO_ROOT", root), ("VALIDATION", root / "validation")):
        monkeypatch.setattr(summary, name, value)
    monkeypatch.chdir(root)
    return root


def snapshot(folder):
    """Every file under `folder` -> its bytes."""
    return {p.relative_to(folder): p.read_bytes() for p in sorted(Path(folder).rglob("*"))
            if p.is_file()}


def one_error_line(capsys):
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


# --- where the outputs go ----------------------------------------------------------------------
def test_a_summary_of_the_project_updates_the_project(project, calls, capsys):
    assert main(["summary"]) == 0
    assert [(name, cwd) for name, _, cwd in calls] == [
        ("summary.ipynb", project / "notebooks"), ("analysis.ipynb", project / "notebooks")]
    assert calls[0][1]["results_dir"] == "../results"
    assert calls[1][1]["validation_dir"] == "../validation"
    assert sorted(p.name for p in (project / "figures").iterdir()) == ["analysis.png",
                                                                         "summary.png"]
    assert (project / "figures" / "summary.png").read_text() == "figure of ../results"
    assert (project / "report.html").is_file() and (project / "analysis.html").is_file()
    readme = (project / "README.md").read_text()
    assert "old" not in readme and "**Test error**" in readme and readme.endswith("\n\nend\n")
    err = capsys.readouterr().err
    assert "README.md: results section rewritten" in err
    before = snapshot(project)
    assert main(["summary"]) == 0  # the same records: no file changes
    assert snapshot(project) == before
    assert "README.md: results section up to date" in capsys.readouterr().err


@pytest.mark.slow
def test_a_summary_of_another_folder_goes_beside_it(tmp_path, calls, capsys):
    results = tmp_path / "results-mine"
    shutil.copytree(FIXTURE, results)
    watched = [REPO / "notebooks", REPO / "figures"]
    before = [snapshot(folder) for folder in watched]
    readme, reports = (REPO / "README.md").read_bytes(), snapshot_root_reports()
    assert main(["summary", "--results", str(results),
                 "--validation", str(tmp_path / "validation")]) == 0
    out = tmp_path / "results-mine-report"
    assert sorted(p.name for p in out.iterdir()) == [
        "analysis.html", "analysis.ipynb", "figures", "readings.html", "readings.ipynb",
        "report.html", "summary.ipynb"]
    assert sorted(p.name for p in (out / "figures").iterdir()) == ["analysis.png", "summary.png"]
    assert [cwd for _, _, cwd in calls] == [out, out, out]  # the kernels work beside the records
    assert calls[0][1]["results_dir"] == "../results-mine"
    # the executed notebook reads the same records when re-run by hand
    cell = next(c for c in nbformat.read(out / "summary.ipynb", as_version=4).cells
                if "parameters" in c.metadata["tags"])
    assert cell.source.startswith('results_dir = "../results-mine"  # the run records')
    assert "figures_dir = None" in cell.source
    # and the project's files are as they were
    assert [snapshot(folder) for folder in watched] == before
    assert (REPO / "README.md").read_bytes() == readme and snapshot_root_reports() == reports
    assert "README" not in capsys.readouterr().err


def snapshot_root_reports():
    return {name: (REPO / name).read_bytes() if (REPO / name).exists() else None
            for name in ("report.html", "analysis.html", "readings.html")}


def test_output_option_puts_everything_in_one_folder(tmp_path, calls):
    results = tmp_path / "results-mine"
    shutil.copytree(FIXTURE, results)
    out = tmp_path / "elsewhere" / "published"
    assert main(["summary", "--results", str(results), "--output", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "analysis.html", "analysis.ipynb", "figures", "readings.html", "readings.ipynb",
        "report.html", "summary.ipynb"]
    assert not (tmp_path / "results-mine-report").exists()


@pytest.mark.slow
def test_the_executed_notebook_is_cleaned(project, calls):
    source = nbformat.read(project / "notebooks" / "summary.ipynb", as_version=4)
    assert main(["summary"]) == 0
    text = (project / "notebooks" / "summary.ipynb").read_text()
    nb = nbformat.read(project / "notebooks" / "summary.ipynb", as_version=4)
    assert [c.id for c in nb.cells] == [c.id for c in source.cells]  # no injected cell
    assert "injected-parameters" not in text and "papermill" not in text
    assert all("execution" not in c.metadata for c in nb.cells)
    counts = [c.execution_count for c in nb.cells if c.cell_type == "code"]
    assert counts == list(range(1, len(counts) + 1))
    parameters = next(c for c in nb.cells if "parameters" in c.metadata["tags"])
    assert parameters.source == next(c for c in source.cells
                                     if "parameters" in c.metadata["tags"]).source


# --- bad input: one line, exit 2, nothing executed or written ----------------------------------
@pytest.mark.parametrize("readme, fragment", [
    ("missing.md", "does not exist: give an existing file with --readme"),
    ("plain.md", "has no results markers: put the lines"),
])
def test_a_bad_readme_is_refused_before_any_work(project, calls, capsys, readme, fragment):
    (project / "plain.md").write_text("# no markers\n")
    before = snapshot(project)
    assert main(["summary", "--readme", str(project / readme)]) == 2
    assert fragment in one_error_line(capsys)
    assert calls == [] and snapshot(project) == before


def test_a_report_where_no_folder_can_be_is_refused_before_any_work(project, calls, capsys):
    (project / "afile").write_text("not a folder\n")
    before = snapshot(project)
    assert main(["summary", "--report", str(project / "afile" / "report.html")]) == 2
    assert "is a file, not a folder; choose another with --report" in one_error_line(capsys)
    assert calls == [] and snapshot(project) == before


def test_a_report_into_a_missing_folder_creates_it(project, calls):
    report = project / "new" / "deeper" / "report.html"
    assert main(["summary", "--report", str(report)]) == 0
    assert sorted(p.name for p in report.parent.iterdir()) == ["analysis.html", "report.html"]


# --- failures while working: nothing replaced, nothing left behind -----------------------------
def leftovers(folder):
    return [p for p in Path(folder).rglob(".*") if p.name != ".gitkeep"]


def changed_records(project):
    """Change the records, so that a summary would change every output."""
    shutil.rmtree(project / "results" / "ws-aux-d0.75")


def test_a_failing_notebook_replaces_nothing(project, calls, monkeypatch, capsys):
    assert main(["summary"]) == 0
    changed_records(project)
    before = snapshot(project)
    monkeypatch.setattr(summary, "execute_notebook", fake_papermill([], fail="analysis.ipynb"))
    capsys.readouterr()
    assert main(["summary"]) == 1
    assert one_error_line(capsys) == \
        "error: analysis.ipynb failed: ValueError: boom; nothing was replaced"
    assert snapshot(project) == before and leftovers(project) == []


@pytest.mark.parametrize("successful_writes", [0, 2, 3])
def test_a_full_disk_replaces_nothing(project, calls, monkeypatch, capsys, successful_writes):
    assert main(["summary"]) == 0
    changed_records(project)
    before = snapshot(project)
    real_fsync, done = os.fsync, []

    def fsync(fd):  # the disk fills up after `successful_writes` files
        if len(done) == successful_writes:
            raise OSError(28, "No space left on device")
        done.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    capsys.readouterr()
    assert main(["summary"]) == 2
    assert one_error_line(capsys) == (
        "error: cannot write the summary's outputs (No space left on device): free some space, "
        "or choose other places with --output; nothing was replaced")
    assert snapshot(project) == before and leftovers(project) == []


# --- the command line ----------------------------------------------------------------------------
def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out == f"python -m helpers {__version__}\n"
    with pytest.raises(SystemExit):
        main(["summary", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Execute notebooks/summary.ipynb, then notebooks/analysis.ipynb" in text
    assert "everything goes to F-report/ beside it" in text and "--output FOLDER" in text


# --- the real notebooks, executed twice ----------------------------------------------------------
@pytest.mark.slow
def test_a_second_summary_over_the_same_records_changes_no_file(tmp_path, mnist_root, capsys,
                                                                monkeypatch):
    monkeypatch.setenv("MNIST_ROOT", mnist_root)
    results = tmp_path / "results-mine"
    shutil.copytree(FIXTURE, results)
    readme = tmp_path / "README.md"
    readme.write_text(README_TEXT)
    argv = ["summary", "--results", str(results), "--readme", str(readme),
            "--validation", str(tmp_path / "validation")]
    out = tmp_path / "results-mine-report"
    assert main(argv) == 0, capsys.readouterr().err
    first = snapshot(out)
    first_readme = readme.read_bytes()
    assert main(argv) == 0
    assert "results section up to date" in capsys.readouterr().err
    assert snapshot(out) == first and readme.read_bytes() == first_readme
    for name in ("summary.ipynb", "analysis.ipynb", "readings.ipynb"):
        text = (out / name).read_text()
        nb = nbformat.reads(text, as_version=4)
        committed = nbformat.read(REPO / "notebooks" / name, as_version=4)
        assert [c.id for c in nb.cells] == [c.id for c in committed.cells]
        assert "injected-parameters" not in text and "papermill" not in text
        assert "iopub" not in text and str(tmp_path) not in text and "/work/" not in text
        errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
        assert errors == []
    assert sorted(p.name for p in (out / "figures").iterdir()) == [
        "alpha_sweep.png", "digit_confusion.png", "learning_curves.png",
        "misclassified_ws-aux.png", "test_errors.png"]

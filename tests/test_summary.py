"""`python -m helpers summary`: which records it publishes, where its outputs go, what the
executed notebooks and pages keep, and how it fails (bad input, a live runner, a failing
notebook, a full disk, a signal) without replacing anything or leaving anything in the tree.

Most tests execute the notebooks with a stand-in for papermill that adds what papermill adds (an
injected-parameters cell with a random id, timings) and saves a figure where it is told, and a
stand-in for the kernel; the tests marked slow execute the real notebooks in a real kernel.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import nbformat
import pytest
from publish_tools import (FIXTURE, TINY, consistent, diverged_at_epoch_2, round_of, template,
                           write_records)

from helpers import UsageError
from helpers.cli import main
from helpers.publish import summary, tables
from helpers.files import lock_folder
from helpers.kernel import NotebookFailed
from helpers.runs.records import FINAL, write_record

REPO = Path(__file__).resolve().parent.parent
README_TEXT = f"# A project\n\nintro\n\n{tables.README_START}\nold\n{tables.README_END}\n\nend\n"
TINY_ARGS = [arg for name, value in TINY.items() for arg in ("-p", name, str(value))]
PAGES = ["analysis.html", "readings.html", "report.html"]


def fake_papermill(calls, fail=None, meanwhile=None):
    """An `execute_notebook` that does what papermill does to a notebook, without a kernel."""
    def execute(notebook, output, parameters, cwd=None, kernel=None):
        notebook, cwd = Path(notebook), cwd or kernel.cwd
        calls.append((notebook.name, dict(parameters), Path(cwd)))
        if meanwhile:
            meanwhile()
        if notebook.name == fail:
            raise NotebookFailed("ValueError: boom")
        nb = nbformat.read(notebook, as_version=4)
        at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
        injected = nbformat.v4.new_code_cell(
            "# Parameters\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in parameters.items()))
        injected.metadata["tags"] = ["injected-parameters"]
        injected.id = uuid.uuid4().hex[:8]
        nb.cells.insert(at + 1, injected)
        nb.metadata["papermill"] = {"start_time": uuid.uuid4().hex, "parameters": parameters}
        for count, cell in enumerate(nb.cells, start=1):
            cell.metadata["papermill"] = {"start_time": uuid.uuid4().hex}
            if cell.cell_type == "code":
                cell.metadata["execution"] = {"iopub.status.busy": uuid.uuid4().hex}
                cell.execution_count = count
                records = len(list((Path(cwd).parent / "results").glob("*/seed-*.json")))
                cell.outputs = [nbformat.v4.new_output(
                    "stream", text=f"{records} records of {parameters.get('results_dir')}\n")]
        if "figures_dir" in parameters:
            figures = Path(cwd) / parameters["figures_dir"]
            (figures / f"{notebook.stem}.png").write_text(f"figure of {parameters['results_dir']}")
        nbformat.write(nb, output)
    return execute


class FakeKernel:
    """Stands in for the warm kernel: the fake papermill needs none, only its folder."""
    cwd = pid = None

    def prepare(self, cwd, environment, log=None):
        self.cwd = cwd

    def stop(self):
        pass

    def kill(self):
        pass


@pytest.fixture
def calls(monkeypatch):
    made = []
    monkeypatch.setattr(summary, "execute_notebook", fake_papermill(made))
    monkeypatch.setattr(summary, "WarmKernel", FakeKernel)
    # the pages themselves: test_pages_link_to_each_other_and_load_nothing_from_the_network
    monkeypatch.setattr(summary, "_html", lambda nb, page, where: nbformat.writes(nb))
    return made


@pytest.fixture
def staging(tmp_path, monkeypatch):
    """The system's temporary folder, watched: the staging folders go there."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(folder))
    return folder


@pytest.fixture
def project(tmp_path, monkeypatch, staging):
    """A copy of the project's layout (results, validation, notebooks, figures, README) that
    the summary takes for the project."""
    root = tmp_path / "project"
    shutil.copytree(FIXTURE, root / "results")
    (root / "validation").mkdir()
    (root / "notebooks").mkdir()
    for name in ("summary.ipynb", "analysis.ipynb", "readings.ipynb", summary.TEMPLATE):
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
            if p.is_file() and p.name != ".lock"}  # a records folder's lock: no data


def hidden(folder):  # temporaries left behind (a records folder's lock file is kept)
    return [p for p in Path(folder).rglob(".*") if p.name != ".lock"]


def one_error_line(capsys):
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


# --- where the outputs go ----------------------------------------------------------------------
def test_a_summary_of_the_project_updates_the_project(project, calls, capsys, staging):
    assert main(["summary", *TINY_ARGS]) == 0
    assert sorted((name, cwd) for name, _, cwd in calls) == [  # in parallel: in any order
        ("analysis.ipynb", project / "notebooks"), ("readings.ipynb", project / "notebooks"),
        ("summary.ipynb", project / "notebooks")]
    calls.sort(key=lambda call: ["summary.ipynb", "analysis.ipynb", "readings.ipynb"].index(
        call[0]))
    assert calls[0][1]["results_dir"] == "../results" and calls[0][1]["overrides"] == TINY
    assert "validation_dir" not in calls[0][1]  # only the names of its parameters cell
    assert calls[2][1] == {"validation_dir": "../validation", "overrides": calls[0][1]["overrides"]}
    assert sorted(p.name for p in (project / "figures").iterdir()) == [
        "analysis.png", "summary.png"]
    assert (project / "figures" / "summary.png").read_text() == "figure of ../results"
    assert all((project / page).is_file() for page in PAGES)
    readme = (project / "README.md").read_text()
    assert "old" not in readme and "Tables III and IV, test error" in readme
    assert readme.endswith("\n\nend\n")
    assert "README.md: results section rewritten" in capsys.readouterr().err
    before = snapshot(project)
    assert main(["summary", *TINY_ARGS]) == 0  # the same records: no file changes
    assert snapshot(project) == before
    assert "README.md: results section up to date" in capsys.readouterr().err
    assert hidden(project) == [] and list(staging.iterdir()) == []


def test_a_summary_of_another_folder_goes_beside_it(tmp_path, calls, capsys, staging):
    results = tmp_path / "results-mine"
    shutil.copytree(FIXTURE, results)
    (tmp_path / "validation").mkdir()
    watched = [REPO / "notebooks", REPO / "figures"]
    before = [snapshot(folder) for folder in watched]
    readme = (REPO / "README.md").read_bytes()
    assert main(["summary", "--results", str(results), "--validation",
                 str(tmp_path / "validation")]) == 0
    out = tmp_path / "results-mine-report"
    assert sorted(p.name for p in out.iterdir()) == [
        "analysis.html", "analysis.ipynb", "figures", "readings.html", "readings.ipynb",
        "report.html", "searches.html", "searches.ipynb", "summary.ipynb"]
    assert [cwd for _, _, cwd in calls] == [out] * 4  # the kernel works beside the records
    assert calls[0][1]["results_dir"] == "../results-mine"
    # the executed notebook reads the same records when re-run by hand
    cell = next(c for c in nbformat.read(out / "summary.ipynb", as_version=4).cells
                if "parameters" in c.metadata.get("tags", []))
    assert cell.source.startswith('results_dir = "../results-mine"  # the run records')
    assert "figures_dir = None" in cell.source
    # and the project's files are as they were
    assert [snapshot(folder) for folder in watched] == before
    assert (REPO / "README.md").read_bytes() == readme
    assert "README" not in capsys.readouterr().err


def test_output_option_puts_everything_in_one_folder(tmp_path, calls, staging):
    results = tmp_path / "results-mine"
    shutil.copytree(FIXTURE, results)
    out = tmp_path / "elsewhere" / "published"
    assert main(["summary", "--results", str(results), "--output", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "analysis.html", "analysis.ipynb", "figures", "readings.html", "readings.ipynb",
        "report.html", "searches.html", "searches.ipynb", "summary.ipynb"]
    assert not (tmp_path / "results-mine-report").exists()


def test_the_executed_notebook_is_cleaned(project, calls):
    source = nbformat.read(project / "notebooks" / "summary.ipynb", as_version=4)
    assert main(["summary", *TINY_ARGS]) == 0
    text = (project / "notebooks" / "summary.ipynb").read_text()
    nb = nbformat.reads(text, as_version=4)
    assert [c.id for c in nb.cells] == [c.id for c in source.cells]  # no injected cell
    assert "injected-parameters" not in text and "papermill" not in text
    assert all("execution" not in c.metadata for c in nb.cells)
    counts = [c.execution_count for c in nb.cells if c.cell_type == "code"]
    assert counts == list(range(1, len(counts) + 1))
    parameters = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    assert parameters.source == next(
        c for c in source.cells if "parameters" in c.metadata.get("tags", [])
    ).source.replace("overrides = {}", f"overrides = {json.dumps(TINY)}")


# --- which records are published -----------------------------------------------------------------
def test_a_record_that_is_not_its_rows_is_named_and_changes_nothing(project, calls, capsys):
    assert main(["summary", *TINY_ARGS]) == 0
    before = snapshot(project)
    other = template("ws-aux-c0.5")  # `run ws-aux-c0.5 --seeds 42 -p alpha 0.6`
    other["params"] |= {"alpha": 0.6}
    write_record(round_of(consistent(other), 42), project / "results")
    capsys.readouterr()
    assert main(["summary", *TINY_ARGS]) == 0
    err = capsys.readouterr().err
    assert ("warning: left out, not their catalogue row's records (seed 42, not one of 0-9): "
            "ws-aux-c0.5/seed-42.json") in err
    assert "README.md: results section up to date" in err
    assert snapshot(project)[Path("README.md")] == before[Path("README.md")]


def test_a_batch_summarised_without_its_p_is_named_with_how_to_count_it(project, calls, capsys):
    # the records were run with -p n_pairs 100 -p epochs 2: without the same -p, none counts
    assert main(["summary"]) == 0
    err = capsys.readouterr().err
    assert "made with n_pairs 2" not in err and "(made with " in err
    assert "; a batch run with -p: pass the same -p" in err


def test_overrides_given_as_text_are_the_dict_they_write(project, calls):
    assert summary.summary(overrides=json.dumps(TINY)) == 0
    assert all(parameters["overrides"] == TINY for _, parameters, _ in calls)


def test_records_the_runner_would_redo_are_named_and_never_published(project, calls, capsys):
    """Test errors set to 0 with their rate and last epoch (its predictions on its pairs say
    otherwise: the summary used to publish it and change a verdict), a number too long to
    parse: each named in one line and left out of every output."""
    path = project / "results" / "ws" / "seed-1.json"
    record = json.loads(path.read_text())
    record.update(test_errors=0, test_error_rate=0.0)
    record["history"][-1]["test_errors"] = 0
    path.write_text(json.dumps(record))
    (project / "results" / "ws-aux" / "seed-1.json").write_text('{"seed": ' + "9" * 5000 + "}")
    assert main(["summary", *TINY_ARGS]) == 0
    err = capsys.readouterr().err
    assert ("warning: damaged record results/ws/seed-1.json (test_errors 0 is not the count of "
            "its wrong test_predictions (") in err
    assert ("warning: damaged record results/ws-aux/seed-1.json (unreadable (ValueError)) is left "
            "out") in err
    assert "summary: 13 records published" in err


def test_the_summary_reads_the_projects_records_from_any_folder(project, calls, tmp_path,
                                                              monkeypatch, capsys):
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "results").mkdir(parents=True)  # not these
    monkeypatch.chdir(elsewhere)
    assert main(["summary", *TINY_ARGS]) == 0
    assert "summary: 15 records published" in capsys.readouterr().err
    assert calls[0][1]["results_dir"] == "../results"  # the project's, from its notebooks


def test_one_folder_given_as_both_results_and_validation_is_locked_once(project, calls, capsys):
    """It used to wait for its own lock: 'being written by pid N (... helpers summary ...)'."""
    assert main(["summary", "--validation", str(project / "results"), *TINY_ARGS]) == 0, \
        capsys.readouterr().err


# --- bad input: one line, exit 2, nothing executed or written ----------------------------------
@pytest.mark.parametrize("argv, fragment", [
    (["--results", "missing"], "does not exist: run experiments first"),
    (["--validation", "/nonexistent"], "/nonexistent does not exist"),  # not an empty ablation
    (["-p", "epochs", "many"], "epochs must be an integer"),
    (["-p", "epoch", "3"], "unknown parameter 'epoch'"),
])
def test_bad_input_is_refused_before_any_work(project, calls, capsys, argv, fragment):
    before = snapshot(project)
    assert main(["summary", *argv]) == 2
    assert fragment in one_error_line(capsys)
    assert calls == [] and snapshot(project) == before


def test_a_readme_without_markers_or_a_missing_template_is_refused(project, calls, capsys):
    (project / "README.md").write_text("# no markers\n")
    assert main(["summary", *TINY_ARGS]) == 2
    assert "has no results markers: put the lines" in one_error_line(capsys)
    (project / "README.md").write_text(README_TEXT)
    (project / "notebooks" / summary.TEMPLATE).unlink()
    assert main(["summary", *TINY_ARGS]) == 2
    assert f"{summary.TEMPLATE} is missing or empty: restore it (git checkout " \
        f"notebooks/{summary.TEMPLATE})" in one_error_line(capsys)
    assert calls == []


@pytest.mark.slow  # starts a process
def test_a_runner_writing_the_records_is_refused(project, calls, capsys):
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from helpers.files import "
                               "lock_folder; lock_folder(sys.argv[1], ''); print(flush=True); "
                               "time.sleep(60)", str(project / "results")],
                              stdout=subprocess.PIPE, text=True)
    try:
        holder.stdout.readline()  # it holds the lock
        before = snapshot(project)
        assert main(["summary", *TINY_ARGS]) == 2
        assert one_error_line(capsys).startswith(f"error: results is being written by pid "
                                                 f"{holder.pid} (")
        assert calls == [] and snapshot(project) == before
    finally:
        holder.kill()
        holder.wait()
    assert main(["summary", *TINY_ARGS]) == 0  # the lock goes with its holder


# --- failures while working: nothing replaced, nothing left behind -----------------------------
def changed_records(project):
    """Change the records, so that a summary would change every output."""
    shutil.rmtree(project / "results" / "ws-aux-d0.75")


def test_a_failing_notebook_replaces_nothing(project, calls, monkeypatch, capsys, staging):
    assert main(["summary", *TINY_ARGS]) == 0
    changed_records(project)
    before = snapshot(project)
    monkeypatch.setattr(summary, "execute_notebook", fake_papermill([], fail="analysis.ipynb"))
    capsys.readouterr()
    assert main(["summary", *TINY_ARGS]) == 1
    assert one_error_line(capsys) == \
        "error: analysis.ipynb failed: ValueError: boom; nothing was replaced"
    assert snapshot(project) == before and hidden(project) == []
    assert list(staging.iterdir()) == []


def test_no_record_changes_while_the_summary_reads_them(project, calls, monkeypatch):
    refused = []

    def a_runner_would_write():  # the lock a runner (or a notebook's save) takes first
        with pytest.raises(UsageError, match="is being written by pid"):
            lock_folder(project / "results", "")
        refused.append(True)

    monkeypatch.setattr(summary, "execute_notebook",
                        fake_papermill([], meanwhile=a_runner_would_write))
    assert main(["summary", *TINY_ARGS]) == 0
    assert len(refused) == 3  # once per notebook
    os.close(lock_folder(project / "results", ""))  # free again


@pytest.mark.parametrize("successful_writes", [0, 2, 5])
def test_a_full_disk_replaces_nothing(project, calls, monkeypatch, capsys, successful_writes):
    assert main(["summary", *TINY_ARGS]) == 0
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
    assert main(["summary", *TINY_ARGS]) == 2
    assert one_error_line(capsys) == (
        "error: cannot write the summary's outputs (No space left on device): free some space, "
        "or choose another place with --output; nothing was replaced")
    assert snapshot(project) == before and hidden(project) == []


def test_a_temporary_file_a_kill_left_is_removed(project, calls):
    left = [project / ".report.html.x1y2.tmp", project / "notebooks" / ".summary.ipynb.a.tmp"]
    for path in left:
        path.write_text("")
    assert main(["summary", *TINY_ARGS]) == 0
    assert hidden(project) == []


# --- the pages ---------------------------------------------------------------------------------
def test_pages_link_to_each_other_and_load_nothing_from_the_network(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
        "[a](analysis.ipynb), [b](best.ipynb#the-network), [c](../docs/readings.md), "
        "[d](https://example.org), [e](#here)")])
    where = summary.plan(FIXTURE, tmp_path)  # the pages of a summary of the project's results/
    where.html, where.pages = REPO, [(REPO / "notebooks" / f"{name}.ipynb", REPO / "notebooks" /
                                      f"{name}.ipynb", REPO / page)
                                     for name, page in summary.PAGES.items()]
    html = summary._html(nb, REPO / "report.html", where)
    links = re.findall(r'<a href="([^"]+)"', html)
    assert links[:5] == ["analysis.html", "notebooks/best.ipynb#the-network", "docs/readings.md",
                         "https://example.org", "#here"]
    assert not re.search(r"<script[^>]+src=", html)  # no MathJax, require.js or mermaid


def test_each_page_is_titled_by_its_notebooks_heading(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("Some words first.\n\n# Appendix A: where the errors come "
                                      "from\n\n## A section")])
    where = summary.plan(FIXTURE, tmp_path)
    html = summary._html(nb, REPO / "analysis.html", where)
    assert "<title>Appendix A: where the errors come from</title>" in html
    for name in summary.PAGES:  # and every published notebook has one, none called "Notebook"
        cells = nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4).cells
        assert cells[0].cell_type == "markdown" and cells[0].source.startswith("# "), name


def test_the_published_notebooks_write_no_latex():
    # offline, without MathJax, a formula in TeX would show as its source
    for name in summary.PAGES:
        nb = nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                assert not re.search(r"\$|\\[a-z]+\{?", cell.source), (name, cell.source[:80])


# --- the command line ----------------------------------------------------------------------------
def test_summary_help_says_where_things_go(capsys):
    with pytest.raises(SystemExit) as done:
        main(["summary", "--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "A record counts only when it is its catalogue row's" in text
    assert "everything goes to F-report/ (or --output)" in text and "-p NAME VALUE" in text


# --- the real notebooks, in a real kernel --------------------------------------------------------
def readings_records(folder):
    """Records of a few rows of the readings study (validation pairs), and of the head study."""
    return write_records(folder, {"val-ws-first": [14, 16, 15], "val-ws-softmax": [30, 28, 31],
                                  "val-ws-aux-first": [9, 10, 8], "val-ws-aux-softmax": [7, 8, 6],
                                  "best-val": [2, 3], "best-val-linear-head": [8, 10]})


def outputs(nb):
    return [o for cell in nb.cells for o in cell.get("outputs", [])]


@pytest.mark.slow
def test_a_real_summary_twice_changes_nothing_and_says_only_what_it_did(tmp_path, mnist_root):
    results = tmp_path / "results-mine"
    shutil.copytree(FIXTURE, results)
    diverged = results / "ws-plain" / "seed-1.json"  # an outcome: named, in no mean
    diverged.write_text(json.dumps(diverged_at_epoch_2(json.loads(diverged.read_text()))))
    validation = readings_records(tmp_path / "validation")
    argv = [sys.executable, "-m", "helpers", "summary", "--results", str(results),
            "--validation", str(validation), *TINY_ARGS]
    env = {**os.environ, "MNIST_ROOT": mnist_root, "TMPDIR": str(tmp_path)}
    out = tmp_path / "results-mine-report"
    first = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    # no kernel log, no warning, no traceback: the line of a summary, after the diverged run's
    assert first.stderr.splitlines()[0] == ("note: 1 record of trainings that diverged, in no "
                                            "mean: ws-plain seed 1"), first.stderr
    assert first.stderr.splitlines()[1].startswith("summary: 14 records published;")
    assert len(first.stderr.splitlines()) == 2, first.stderr
    made = snapshot(out)
    assert subprocess.run(argv, env=env, capture_output=True, text=True).returncode == 0
    assert snapshot(out) == made
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results-mine", "results-mine-report",
                                                          "validation"]  # no staging left
    for name in ("summary", "analysis", "readings", "searches"):
        text = (out / f"{name}.ipynb").read_text()
        nb = nbformat.reads(text, as_version=4)
        committed = nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4)
        assert [c.id for c in nb.cells] == [c.id for c in committed.cells]
        assert "papermill" not in text and str(tmp_path) not in text and "/work/" not in text
        assert not [o for o in outputs(nb) if o.output_type == "error" or
                    o.get("name") == "stderr"], name  # no error, no warning
    analysis = "\n".join(json.dumps(o.get("data", o.get("text"))) for o in
                         outputs(nbformat.read(out / "analysis.ipynb", as_version=4)))
    # the head study's verdict, and the same records' in best's ablation: each names its family
    assert "Over the 1 test of this section (Holm): `best-val-linear-head`" in analysis
    assert "within best's ablation, a family of 1 test: `best-val-linear-head`" in analysis
    readings = "\n".join(json.dumps(o.get("data", o.get("text"))) for o in
                         outputs(nbformat.read(out / "readings.ipynb", as_version=4)))
    for raw in ("metric_pct", "vs_first", "NaN", ">True<", ">False<", "in_metric"):
        assert raw not in readings, raw
    assert not [o for o in outputs(nbformat.read(out / "readings.ipynb", as_version=4))
                if o.output_type == "stream" and "`" in o.text]
    report = (out / "report.html").read_text()
    assert "<td>1 of 10, 1 diverged</td>" in report  # ws-plain's rounds, in Table III
    assert ("Diverged trainings (recorded as such; in no mean and no paired comparison): "
            "<code>ws-plain</code> seed 1.") in report
    for page in PAGES:
        html = (out / page).read_text()
        assert not re.search(r"<script[^>]+src=", html)
        assert not re.search(r"<t[dh]>[^<]*(\.\.\.|…)</t[dh]>", html), page  # no cell cut
        for link in re.findall(r'<a href="([^"#:]+)', html):
            assert (out / link).exists(), (page, link)
    assert sorted(p.name for p in (out / "figures").iterdir()) == [
        "alpha_sweep.png", "digit_confusion.png", "learning_curves.png",
        "misclassified_ws-aux.png", "test_errors.png"]


@pytest.mark.slow
def test_a_summary_of_a_p_batch_beside_the_studys_records_says_what_counts(tmp_path, mnist_root):
    # the batch's records (-p n_pairs 100 -p epochs 2) beside validation records made with the
    # report's protocol (the readings study's, the head study's): those are left out, and every
    # page still says what it has
    results = tmp_path / "results-mine"
    shutil.copytree(FIXTURE, results)
    for name in ("val-ws-first", "val-ws-aux-first", "best-val", "best-val-linear-head"):
        shutil.copytree(REPO / "validation" / name, tmp_path / "validation" / name)
    argv = [sys.executable, "-m", "helpers", "summary", "--results", str(results),
            "--validation", str(tmp_path / "validation"), *TINY_ARGS]
    done = subprocess.run(argv, env={**os.environ, "MNIST_ROOT": mnist_root,
                                     "TMPDIR": str(tmp_path)}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "results-mine-report"
    readings = (out / "readings.html").read_text()
    assert "None is its catalogue row" in readings and "No records of the study yet" in readings
    report = (out / "report.html").read_text()
    assert "counted as the catalogue" in report and "n_pairs 100" in report


@pytest.mark.slow
def test_a_search_with_a_diverged_round_is_named_not_decided_on_fewer_rounds(tmp_path,
                                                                             mnist_root):
    """The same-budget search's records, one round of stage 1a's network made a diverged
    training's: its rules compare means over every round, so its section names the row short
    of rounds instead of deciding (or failing) on the nine left."""
    validation = tmp_path / "validation"
    for folder in (REPO / "validation").glob("budget-val-*"):
        shutil.copytree(folder, validation / folder.name)
    path = validation / "budget-val-deep24-h64" / "seed-103.json"
    record = json.loads(path.read_text())
    for key in FINAL:
        del record[key]
    record.update(history=record["history"][:24], diverged={"epoch": 25, "step": 241,
                                                            "loss": "nan"})
    path.write_text(json.dumps(record))
    done = subprocess.run([sys.executable, "-m", "helpers", "summary", "--results", str(FIXTURE),
                           "--validation", str(validation), "--output", str(tmp_path / "out")],
                          env={**os.environ, "MNIST_ROOT": mnist_root, "TMPDIR": str(tmp_path)},
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    searches = (tmp_path / "out" / "searches.html").read_text()
    assert ("Rows of this search short of their rounds under <code>" in searches and
            "<code>budget-val-deep24-h64</code> (9 of 10 rounds, 1 diverged)" in searches), searches
    assert "same-budget</code> is it" not in searches


@pytest.mark.slow
@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130),
                                          (signal.SIGHUP, 129)])
def test_a_summary_stopped_by_a_signal_leaves_the_tree_as_it_was(tmp_path, mnist_root, signum,
                                                                  code):
    import psutil

    results = tmp_path / "results"
    write_records(results, {"ws": [40, 42]})
    (tmp_path / "validation").mkdir()
    notebooks = tmp_path / "notebooks"
    shutil.copytree(REPO / "notebooks", notebooks)
    started = tmp_path / "started"
    nb = nbformat.read(notebooks / "analysis.ipynb", as_version=4)
    nb.cells.insert(3, nbformat.v4.new_code_cell(
        f"import pathlib, time\npathlib.Path({str(started)!r}).touch()\ntime.sleep(300)"))
    nbformat.write(nb, notebooks / "analysis.ipynb")
    before = snapshot(tmp_path)
    staging = tmp_path / "tmp"
    staging.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "helpers", "summary", "--results", str(results), "--validation",
         str(tmp_path / "validation"), "--notebooks", str(notebooks), *TINY_ARGS],
        env={**os.environ, "MNIST_ROOT": mnist_root, "TMPDIR": str(staging)},
        stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 300
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    kernel = [p for p in psutil.Process(process.pid).children(recursive=True)]
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    assert process.returncode == code, err
    assert err.splitlines() == [f"stopped by {signal.Signals(signum).name}: nothing replaced"]
    started.unlink()
    assert snapshot(tmp_path) == before and list(staging.iterdir()) == []
    assert not (tmp_path / "results-report").exists()
    assert kernel and not [p for p in kernel if p.is_running() and
                           p.status() != psutil.STATUS_ZOMBIE]  # its kernel is gone too

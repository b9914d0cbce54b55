"""`python -m helpers summary`: publish the records of a results folder.

Executes the summary notebook, then the analysis and readings notebooks, over the records; cleans each
executed notebook (`clean_notebook`: no injected-parameters cell, no timings, the same cell
ids), so that a second summary over unchanged records changes no file; exports each to HTML
without its code; rewrites the README's results section.

Where the outputs go (`plan`): a summary of the project's results/ updates notebooks/ in
place, figures/, report.html and analysis.html at the project's root and the README block. A
summary of any other folder F writes everything beside it, into F-report/ (summary.ipynb,
analysis.ipynb, report.html, analysis.html, figures/), and leaves the project's files alone,
unless asked otherwise (--output, --figures, --report, --readme).

All of the input is checked before any work. Every output is first written to a temporary file
beside its target (the figures into a temporary folder), and only when all are written are
they renamed into place: a failure anywhere before that (a notebook error, a full disk, Ctrl-C)
replaces nothing and leaves no temporary file behind.
"""

import json
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from ..files import (
    FIGURES,
    NOTEBOOKS,
    README,
    REPO_ROOT,
    RESULTS,
    VALIDATION,
    check_writable,
    relative,
)
from ..runs import records
from ..runs.execution import NotebookFailed, execute_notebook
from ..runs.runner import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from . import tables

PAGES = (("summary.ipynb", "report"), ("analysis.ipynb", "analysis.html"))
# Parameters whose value the executed notebook keeps as its parameters cell's default, so that
# re-running it in Jupyter reads the same records; figures_dir stays None there (show only).
KEPT_PARAMETERS = ("results_dir", "validation_dir")


@dataclass
class Plan:
    """Where one summary reads and writes (all paths absolute)."""
    results: Path      # the records
    validation: Path   # the ablation's records (the analysis notebook)
    source: Path       # the folder of the notebooks executed
    notebooks: Path    # where the executed notebooks go (the kernels work there)
    figures: Path
    report: Path       # the summary's HTML; the analysis's is `analysis_html`
    analysis_html: Path
    readme: Path | None
    project: bool      # a summary of the project's results/

    def pages(self):
        """(source notebook, executed notebook, HTML) of each notebook the summary executes."""
        found = [(self.source / "summary.ipynb", self.notebooks / "summary.ipynb", self.report)]
        for name, html in (("analysis", self.analysis_html),
                           ("readings", self.report.with_name("readings.html"))):
            if (self.source / f"{name}.ipynb").is_file():
                found.append((self.source / f"{name}.ipynb", self.notebooks / f"{name}.ipynb",
                              html))
        return found


def beside(results_dir):
    """The folder that receives the summary of a results folder other than the project's."""
    results = Path(results_dir).resolve()
    return results.parent / f"{results.name}-report"


def plan(results_dir="results", output=None, figures_dir=None, report=None, readme=None,
         notebooks_dir=None, validation_dir=None):
    """Where a summary of `results_dir` reads and writes, every input checked (UsageError,
    one line naming the problem and the fix, before anything is executed or written).

    `notebooks_dir`: the folder of the notebooks to execute, in place (tests and the
    benchmark execute a copy); `output`: one folder for every output."""
    results = Path(results_dir).resolve()
    if not results.is_dir():
        raise UsageError(f"results folder {results_dir} does not exist: run experiments first "
                         f"(python -m helpers run all), or choose it with --results")
    source = Path(notebooks_dir or NOTEBOOKS).resolve()
    if not (source / "summary.ipynb").is_file():
        raise UsageError(f"summary notebook {source / 'summary.ipynb'} is missing: restore it "
                         f"(git checkout notebooks/summary.ipynb)")
    project = results == RESULTS
    if output is not None:
        out = Path(output).resolve()
        notebooks, default_figures, default_report = out, out / "figures", out / "report.html"
    elif notebooks_dir is not None:  # a copy of the notebooks, executed in place
        out = beside(results)
        notebooks, default_figures, default_report = source, out / "figures", out / "report.html"
    elif project:
        notebooks, default_figures, default_report = source, FIGURES, REPO_ROOT / "report.html"
    else:
        out = beside(results)
        notebooks, default_figures, default_report = out, out / "figures", out / "report.html"
    figures = Path(figures_dir).resolve() if figures_dir else default_figures
    report = Path(report).resolve() if report else default_report
    if report.is_dir():
        raise UsageError(f"report {report} is a folder: give --report a file name, e.g. "
                         f"{report / 'report.html'}")
    if readme is None and project and output is None:
        readme = README
    if readme is not None:
        readme = Path(readme).resolve()
        check_readme(readme)
    validation = Path(validation_dir).resolve() if validation_dir else VALIDATION
    check_writable(notebooks, "notebooks", "--output")
    check_writable(figures, "figures", "--figures")
    check_writable(report.parent, "report", "--report")
    return Plan(results=results, validation=validation, source=source, notebooks=notebooks,
                figures=figures, report=report, analysis_html=report.with_name("analysis.html"),
                readme=readme, project=project)


def check_readme(readme):
    """UsageError unless `readme` is a readable file holding both results markers."""
    try:
        text = Path(readme).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"README {relative(readme)} does not exist: give an existing file "
                         f"with --readme (its results section goes between the markers)") \
            from None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"README {relative(readme)} cannot be read ({error}): give another "
                         f"with --readme") from None
    if tables.README_START not in text or tables.README_END not in text:
        raise UsageError(f"README {relative(readme)} has no results markers: put the lines "
                         f"'{tables.README_START}' and '{tables.README_END}' where the results "
                         f"go, or give another file with --readme")


def summary(results_dir="results", figures_dir=None, report=None, notebooks_dir=None,
            stream=None, readme=None, output=None, validation_dir=None):
    """Execute the summary notebook, then the analysis notebook where there is one, over
    `results_dir`; export each to HTML without code; rewrite the results section of the
    README (see `plan` for where each output goes). -> exit code: 0, or 1 when a notebook
    fails (2 when the failure is a usage error in it); then nothing is replaced.
    Raises UsageError for bad input, and when an output cannot be written."""
    stream = stream or sys.stderr
    where = plan(results_dir, output, figures_dir, report, readme, notebooks_dir, validation_dir)
    found = records.load(where.results)
    for path, why in found.damaged:
        print(f"warning: damaged record {relative(path)} ({why}) is left out; "
              f"`python -m helpers run` redoes it", file=stream)
    if not found.records:
        print(f"warning: no valid record in {results_dir}: the summary will be empty",
              file=stream)
    if os.environ.get("MNIST_ROOT"):  # the kernels run in the notebooks' folder
        os.environ["MNIST_ROOT"] = str(Path(os.environ["MNIST_ROOT"]).resolve())

    created, staged, staging = [], [], None  # staged: (temporary, target), renamed at the end
    replaced = 0
    try:
        created = _make_folders(where.notebooks, where.figures, where.report.parent)
        staging = Path(tempfile.mkdtemp(dir=where.figures, prefix=".figures-"))
        html = {}
        for source, executed, page in where.pages():
            nb = _execute(source, where, staging, stream)
            if isinstance(nb, int):
                return nb
            staged.append((_stage(executed, _notebook_text(nb)), executed))
            html[page] = _html(nb)
        for page, body in html.items():
            staged.append((_stage(page, body), page))
        readme_changed = False
        if where.readme is not None:
            text = where.readme.read_text(encoding="utf-8")
            new = readme_text(text, found)
            readme_changed = new != text
            if readme_changed:
                staged.append((_stage(where.readme, new), where.readme))
        figures = sorted(staging.glob("*.png"))
        for figure in figures:
            staged.append((figure, where.figures / figure.name))
        for temporary, target in staged:  # renames only: nothing left to fail for want of space
            os.replace(temporary, target)
            replaced += 1
        staged = []
    except OSError as error:
        done = ("nothing was replaced" if not replaced else
                f"{replaced} of {len(staged)} outputs were replaced: run the summary again")
        raise UsageError(f"cannot write the summary's outputs ({error.strerror or error}): "
                         f"free some space, or choose other places with --output; {done}") \
            from None
    finally:
        for temporary, _ in staged:
            Path(temporary).unlink(missing_ok=True)
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        for folder in reversed(created):  # folders made for outputs that never came
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
    if where.readme is not None:
        print(f"{relative(where.readme)}: results section "
              f"{'rewritten' if readme_changed else 'up to date'}", file=stream)
    pages = where.pages()
    print(f"summary: {len(found.records)} records; "
          f"{', '.join(relative(executed) for _, executed, _ in pages)} executed, "
          f"{', '.join(relative(page) for _, _, page in pages)} and {len(figures)} figures in "
          f"{relative(where.figures)} written", file=stream)
    return EXIT_OK


def _make_folders(*folders):
    """Create the missing `folders` -> the folders created, parents first."""
    created = []
    for folder in folders:
        missing = [folder, *folder.parents]
        for path in reversed(missing[:next(i for i, p in enumerate(missing) if p.exists())]):
            path.mkdir()
            created.append(path)
    return created


def _relative(path, start):
    """`path` as a kernel working in `start` should see it: relative when both lie in the
    same folder tree (the project, or the folder beside which a summary was written), so that
    no machine path lands in a notebook; else absolute."""
    path, start = Path(path).resolve(), Path(start).resolve()
    if start.parent == path or start.parent in path.parents:
        return os.path.relpath(path, start)
    return str(path)


def _execute(source, where, staging, stream):
    """Execute `source` with papermill in `where.notebooks` -> the cleaned notebook, or the
    exit code when a cell failed (the executed file is removed)."""
    import nbformat

    names = parameter_names(nbformat.read(source, as_version=4))
    values = {"results_dir": where.results, "validation_dir": where.validation,
              "figures_dir": staging}
    parameters = {name: _relative(value, where.notebooks) for name, value in values.items()
                  if name in names}
    fd, executed = tempfile.mkstemp(dir=where.notebooks, prefix=f".{source.stem}-",
                                    suffix=".ipynb")
    os.close(fd)
    try:
        execute_notebook(source, executed, parameters, where.notebooks)
        nb = nbformat.read(executed, as_version=4)
    except NotebookFailed as failure:
        print(f"error: {source.name} failed: {failure.message}; nothing was replaced",
              file=stream)
        return EXIT_USAGE if failure.usage else EXIT_FAILED
    finally:
        Path(executed).unlink(missing_ok=True)
    return clean_notebook(nb, {name: value for name, value in parameters.items()
                               if name in KEPT_PARAMETERS})


# ---------------------------------------------------------------------------------------------
# The executed notebook, cleaned: what is committed is the same for the same records
# ---------------------------------------------------------------------------------------------
def parameter_names(nb):
    """The names assigned in `nb`'s cell tagged `parameters`."""
    for cell in nb.cells:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            return [m.group(1) for m in re.finditer(r"^(\w+)\s*=", cell.source, re.MULTILINE)]
    return []


def _set_default(source, name, value):
    """`source` with the value assigned to `name` replaced by `value` (its comment kept)."""
    pattern = re.compile(rf"""^(\s*{name}\s*=\s*)("[^"\n]*"|'[^'\n]*'|[^\s#]+)""", re.MULTILINE)
    return pattern.sub(lambda m: m.group(1) + json.dumps(value), source, count=1)


def clean_notebook(nb, defaults=None):
    """`nb` (executed by papermill) without what changes from one execution to the next or
    hides its parameters: the injected-parameters cell (and its random id), papermill's
    notebook metadata (timings, parameters, paths) and each cell's papermill and execution
    timings; execution counts renumbered 1, 2, ... over the cells that remain. `defaults`
    (name -> value) become the parameters cell's values, so that the notebook reads the same
    records when re-run by hand. Cell ids are kept."""
    nb.cells = [cell for cell in nb.cells
                if "injected-parameters" not in cell.get("metadata", {}).get("tags", [])]
    nb.metadata.pop("papermill", None)
    count = 0
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        if "parameters" in cell.metadata.get("tags", []):
            for name, value in (defaults or {}).items():
                cell.source = _set_default(cell.source, name, value)
        if cell.get("execution_count") is not None:
            count += 1
            cell.execution_count = count
            for output in cell.get("outputs", []):
                if output.get("output_type") == "execute_result":
                    output["execution_count"] = count
    return nb


def _notebook_text(nb):
    """`nb` as nbformat.write writes it."""
    import nbformat

    text = nbformat.writes(nb)
    return text if text.endswith("\n") else text + "\n"


def _html(nb):
    """`nb` as HTML without its code (input cells and prompts left out)."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(exclude_input=True, exclude_input_prompt=True,
                           exclude_output_prompt=True).from_notebook_node(nb)
    return body


def _stage(target, text):
    """Write `text` to a temporary file beside `target`, flushed to disk -> its path (the
    caller renames it over `target`, or removes it)."""
    target = Path(target)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return Path(temporary)


# ---------------------------------------------------------------------------------------------
# The README's results section
# ---------------------------------------------------------------------------------------------
def readme_text(text, found, expected_rounds=None):
    """`text` (a README) with its results section rewritten from `found`. Raises ValueError
    when the markers are missing."""
    if tables.README_START not in text or tables.README_END not in text:
        raise ValueError("the README has no results markers")
    head, rest = text.split(tables.README_START, 1)
    _, tail = rest.split(tables.README_END, 1)
    return (f"{head}{tables.README_START}\n{tables.readme_results(found, expected_rounds)}\n"
            f"{tables.README_END}{tail}")


def update_readme(readme, found, expected_rounds=None):
    """Replace the results section of `readme` (between the markers) atomically.
    -> True when the file changed. Raises ValueError when the markers are missing."""
    from ..files import atomic_write

    path = Path(readme)
    text = path.read_text(encoding="utf-8")
    new = readme_text(text, found, expected_rounds)
    if new == text:
        return False
    atomic_write(path, new)
    return True


# ---------------------------------------------------------------------------------------------
# The architecture notebooks, executed with their defaults (what nbval compares)
# ---------------------------------------------------------------------------------------------
ARCHITECTURE_NOTEBOOKS = ("baseline.ipynb", "weight_sharing.ipynb", "auxiliary_loss.ipynb",
                          "best.ipynb")


def refresh_notebooks(names=ARCHITECTURE_NOTEBOOKS, notebooks_dir=None, stream=None):
    """Execute each notebook of `names` in place with its own defaults (one round, seed 0,
    nothing written), cleaned like the summary's, replacing it only when it ran to its end.
    `make notebooks` does this after a change to the code the notebooks show or run; `make
    report` does not (a training's wall time in their output changes at every execution).
    -> exit code."""
    stream = stream or sys.stderr
    folder = Path(notebooks_dir or NOTEBOOKS).resolve()
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise UsageError(f"no notebook {', '.join(missing)} in {relative(folder)}: choose among "
                         f"{', '.join(ARCHITECTURE_NOTEBOOKS)}")
    import nbformat

    for name in names:
        fd, executed = tempfile.mkstemp(dir=folder, prefix=f".{Path(name).stem}-",
                                        suffix=".ipynb")
        os.close(fd)
        try:
            execute_notebook(folder / name, executed, {}, folder)
            nb = clean_notebook(nbformat.read(executed, as_version=4))
        except NotebookFailed as failure:
            print(f"error: {name} failed: {failure.message}; it is left as it was", file=stream)
            return EXIT_USAGE if failure.usage else EXIT_FAILED
        finally:
            Path(executed).unlink(missing_ok=True)
        os.replace(_stage(folder / name, _notebook_text(nb)), folder / name)
        print(f"{relative(folder / name)} executed", file=stream)
    return EXIT_OK

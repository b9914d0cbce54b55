"""`python -m helpers summary`: publish the records of a results folder.

Executes the summary notebook, then the analysis notebook, in place over the records; exports
each to HTML without its code (report.html, analysis.html); rewrites the README's results
section when asked.
"""

import os
import sys
import tempfile
from pathlib import Path

from ..errors import UsageError
from ..files import NOTEBOOKS, atomic_write, check_writable, relative
from ..runs import records
from ..runs.execution import NotebookFailed, execute_notebook
from ..runs.runner import EXIT_FAILED, EXIT_OK, EXIT_USAGE, notebook_path
from . import tables


def summary(results_dir="results", figures_dir="figures", report="report.html",
            notebooks_dir=None, stream=None, readme=None):
    """Execute the summary notebook, then the analysis notebook where there is one, in place
    over `results_dir`; export each to HTML without code (`report`, and analysis.html beside
    it); rewrite the results section of `readme` when one is given.
    -> exit code: 0, or 1 when a notebook fails (it is then left as it was)."""
    stream = stream or sys.stderr
    notebooks_dir = Path(notebooks_dir or NOTEBOOKS).resolve()
    notebook = notebooks_dir / "summary.ipynb"
    if not notebook.is_file():
        raise UsageError(f"summary notebook {notebook} is missing: restore it "
                         f"(git checkout notebooks/summary.ipynb)")
    if not Path(results_dir).is_dir():
        raise UsageError(f"results folder {results_dir} does not exist: run experiments first "
                         f"(python -m helpers run all), or choose it with --results")
    check_writable(figures_dir, "figures", "--figures")
    check_writable(notebooks_dir, "notebooks", "--notebooks")
    check_writable(Path(report).resolve().parent, "report", "--report")
    found = records.load(results_dir)
    for path, why in found.damaged:
        print(f"warning: damaged record {relative(path)} ({why}) is left out; "
              f"`python -m helpers run` redoes it", file=stream)
    if not found.records:
        print(f"warning: no valid record in {results_dir}: the summary will be empty",
              file=stream)
    if os.environ.get("MNIST_ROOT"):  # the kernels run in the notebooks folder
        os.environ["MNIST_ROOT"] = str(Path(os.environ["MNIST_ROOT"]).resolve())
    Path(figures_dir).mkdir(parents=True, exist_ok=True)
    parameters = {"results_dir": notebook_path(results_dir, notebooks_dir),
                  "figures_dir": notebook_path(figures_dir, notebooks_dir)}
    pages = [(notebook, Path(report))]
    if (notebooks_dir / "analysis.ipynb").is_file():
        pages.append((notebooks_dir / "analysis.ipynb", Path(report).with_name("analysis.html")))
    for page, html in pages:
        code = _execute_in_place(page, parameters, html, notebooks_dir, stream)
        if code != EXIT_OK:
            return code
    if readme:
        changed = update_readme(readme, found)
        print(f"{relative(readme)}: results section {'rewritten' if changed else 'up to date'}",
              file=stream)
    print(f"summary: {len(found.records)} records; "
          f"{', '.join(relative(page) for page, _ in pages)} executed, "
          f"{', '.join(relative(html) for _, html in pages)} written", file=stream)
    return EXIT_OK


def _execute_in_place(notebook, parameters, html, notebooks_dir, stream):
    """Execute `notebook` into a temporary file beside it, rename it over the notebook (a
    failure leaves the notebook as it was) and export it to `html`. -> exit code."""
    import nbformat

    fd, executed = tempfile.mkstemp(dir=notebooks_dir, prefix=f".{notebook.stem}-",
                                    suffix=".ipynb")
    os.close(fd)
    try:
        execute_notebook(notebook, executed, parameters, notebooks_dir)
    except NotebookFailed as failure:
        Path(executed).unlink(missing_ok=True)
        print(f"error: {notebook.name} failed: {failure.message}", file=stream)
        return EXIT_USAGE if failure.usage else EXIT_FAILED
    except BaseException:
        Path(executed).unlink(missing_ok=True)
        raise
    # papermill records where it read and wrote the notebook: machine paths, in a committed file.
    executed_nb = nbformat.read(executed, as_version=4)
    executed_nb.metadata.papermill.update(input_path=notebook.name, output_path=notebook.name)
    nbformat.write(executed_nb, executed)
    os.replace(executed, notebook)
    _export_html(executed_nb, html)
    return EXIT_OK


def _export_html(notebook, report):
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(exclude_input=True, exclude_input_prompt=True,
                           exclude_output_prompt=True).from_notebook_node(notebook)
    atomic_write(report, body)


def update_readme(readme, found, expected_rounds=None):
    """Replace the results section of `readme` (between the markers) atomically.
    -> True when the file changed. Raises ValueError when the markers are missing."""
    path = Path(readme)
    text = path.read_text()
    if tables.README_START not in text or tables.README_END not in text:
        raise ValueError(f"{readme} has no results markers")
    head, rest = text.split(tables.README_START, 1)
    _, tail = rest.split(tables.README_END, 1)
    new = (f"{head}{tables.README_START}\n{tables.readme_results(found, expected_rounds)}\n"
           f"{tables.README_END}{tail}")
    if new == text:
        return False
    atomic_write(path, new)
    return True

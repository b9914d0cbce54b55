"""`python -m helpers summary` (and `notebooks`): the report's notebooks (PAGES) executed over
the records (papermill, one kernel), their HTML without code (nbconvert), their figures, the
README block from its template: in place for the project's results/, in F-report/ (or --output)
for another folder F. All is made in a staging folder outside the project and put in place once
all is made: a failing notebook or a signal leaves the tree as it was."""

import json
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import SimpleNamespace

import nbformat

from ..catalogue import experiments
from ..errors import UsageError
from ..files import (FIGURES, NOTEBOOKS, README, REPO_ROOT, RESULTS, VALIDATION, check_writable,
                     lock_folder, relative, stale_temporaries)
from ..runs import records
from ..kernel import NotebookFailed, WarmKernel, execute_notebook, import_papermill
from ..runs.runner import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from . import tables

PAGES = {"summary": "report.html", "analysis": "analysis.html", "readings": "readings.html",
         "searches": "searches.html"}
TEMPLATE = "readme-results.md.j2"
# An executed notebook keeps these as defaults: re-run by hand or nbval, it reads the same records.
KEPT_PARAMETERS = ("results_dir", "validation_dir", "overrides")
# The pages load nothing from the network: no MathJax (the prose writes formulas in Unicode).
OFFLINE = "{%- extends 'lab/index.html.j2' -%}" + "".join(
    f"{{%- block {name} -%}}{{%- endblock {name} -%}}"
    for name in ("html_head_js", "html_head_js_mathjax", "html_head_js_mermaidjs"))


def plan(results_dir="results", validation_dir=None, output=None, notebooks_dir=None):
    """Where a summary reads and writes, all input checked first; `notebooks_dir`: a copy of
    the notebooks, executed in place (tests, the benchmark)."""
    results = Path(results_dir).resolve()
    validation = Path(validation_dir).resolve() if validation_dir else VALIDATION
    for folder, option in ((results, "--results"), (validation, "--validation")):
        if not folder.is_dir():
            raise UsageError(f"records folder {folder} does not exist: run experiments first "
                             f"(python -m helpers run), or choose another with {option}")
    source = Path(notebooks_dir or NOTEBOOKS).resolve()
    out = Path(output).resolve() if output else results.parent / f"{results.name}-report"
    project = results == RESULTS and output is None
    where = SimpleNamespace(
        results=results, validation=validation, source=source,
        output=source if project or notebooks_dir else out,  # the kernel works there
        figures=FIGURES if project else out / "figures", html=REPO_ROOT if project else out,
        readme=README if project else None)
    for path in (source / "summary.ipynb", source / TEMPLATE, where.readme):
        text = path.read_text(encoding="utf-8") if path and path.is_file() else ""
        if path and not text:
            raise UsageError(f"{relative(path)} is missing or empty: restore it (git checkout "
                             f"{path.parent.name}/{path.name})")
        if path == README and not (tables.README_START in text and tables.README_END in text):
            raise UsageError(f"{relative(path)} has no results markers: put the lines "
                             f"'{tables.README_START}' and '{tables.README_END}' where the "
                             f"results go")
    for folder in (where.output, where.figures, where.html):
        check_writable(folder, "output", "--output")
    where.pages = [(source / f"{name}.ipynb", where.output / f"{name}.ipynb", where.html / page)
                   for name, page in PAGES.items() if (source / f"{name}.ipynb").is_file()]
    return where


def summary(results_dir="results", validation_dir=None, output=None, notebooks_dir=None,
            overrides=None, stream=None):
    """Publish `results_dir` -> exit code: 0, else (nothing replaced) 1 a notebook failed, 2 a
    usage error in a notebook, 128 + a signal."""
    stream = stream or sys.stderr
    where = plan(results_dir, validation_dir, output, notebooks_dir)
    overrides = tables.parsed_overrides(overrides)
    if os.environ.get("MNIST_ROOT"):  # the kernel works in another folder
        os.environ["MNIST_ROOT"] = str(Path(os.environ["MNIST_ROOT"]).resolve())
    made = []
    try:
        with ExitStack() as locks, _staging() as staging:
            for folder in sorted({where.results, where.validation}):  # (each once)
                if os.access(folder, os.W_OK):  # one no runner can write needs no lock
                    locks.callback(os.close, lock_folder(folder, "summarise a copy of it "
                                                                 "(--results COPY)"))
            made = [p for p in (*where.output.parents[::-1], where.output) if not p.exists()]
            where.output.mkdir(parents=True, exist_ok=True)
            # folders in the tree the kernel works in go relative: no machine path in a notebook
            parameters = {name: os.path.relpath(path, where.output) if where.output.parent in
                          (path, *path.parents) else str(path) for name, path in
                          (("results_dir", where.results), ("validation_dir", where.validation),
                           ("figures_dir", staging))} | {"overrides": overrides}
            with _executing([(page[0], parameters) for page in where.pages], where.output,
                            staging) as executed:
                found = tables.published(records.load(where.results), overrides)
                _tell_left_out(found, stream)
                staged = {}
                if where.readme is not None:
                    heads = tables.published(records.load(where.validation,
                                                          experiments.HEAD_STUDY), overrides)
                    staged[where.readme] = tables.readme_text(
                        where.readme.read_text(encoding="utf-8"),
                        tables.readme_block(found, where.source / TEMPLATE, heads))
                for source, notebook, page in where.pages:
                    nb = next(executed)
                    if isinstance(nb, NotebookFailed):
                        return _failed(source.name, nb, stream)
                    staged[notebook] = nbformat.writes(nb) + "\n"
                    staged[page] = _html(nb, page, where)
            staged.update({where.figures / f.name: f.read_bytes() for f in staging.glob("*.png")})
            changed = _install(staged)
    except KeyboardInterrupt as stop:
        return _stopped(stop, stream)
    finally:
        for folder in reversed(made):  # made for outputs that never came
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
    if where.readme is not None:
        print(f"{relative(where.readme)}: results section "
              f"{'rewritten' if where.readme in changed else 'up to date'}", file=stream)
    print(f"summary: {len(found.records)} records published; {len(changed)} of {len(staged)} "
          f"outputs changed; read {relative(where.pages[0][2])}", file=stream)
    return EXIT_OK


def _stopped(stop, stream):
    signum = stop.args[0] if stop.args else signal.SIGINT  # no argument: Ctrl-C
    print(f"stopped by {signal.Signals(signum).name}: nothing replaced", file=stream)
    return 128 + signum


def _failed(what, failure, stream):
    print(f"error: {what} failed: {failure.message}; nothing was replaced", file=stream)
    return EXIT_USAGE if failure.usage else EXIT_FAILED


def _tell_left_out(found, stream):  # a line per damaged record, one per reason to leave out
    for path, why in found.damaged:
        print(f"warning: damaged record {relative(path)} ({why}) is left out; "
              f"`python -m helpers run` redoes it", file=stream)
    for why in dict.fromkeys(why for _, why in found.left_out):
        names = [name for name, reason in found.left_out if reason == why]
        hint = "; a batch run with -p: pass the same -p" * why.startswith("made with")
        print(f"warning: left out, not their catalogue row's records ({why}): "
              f"{', '.join(names[:3])}{f' and {len(names) - 3} more' * (len(names) > 3)}{hint}",
              file=stream)
    if gone := found.diverged:  # an outcome, not a fault: one line
        print(f"note: {len(gone)} record{'s' * (len(gone) > 1)} of trainings that diverged, in "
              f"no mean: " + ", ".join(f"{r['experiment']} seed {r['seed']}" for r in gone[:3])
              + f" and {len(gone) - 3} more" * (len(gone) > 3), file=stream)


@contextmanager
def _staging():
    """A folder outside the project, removed however this ends; SIGTERM and SIGHUP raise
    KeyboardInterrupt(signal) meanwhile, as Ctrl-C does."""
    def stop(signum, frame):
        raise KeyboardInterrupt(signum)

    folder = Path(tempfile.mkdtemp(prefix="helpers-summary-"))
    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield folder
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def _executing(jobs, cwd, staging):
    """Yields the cleaned notebooks of `jobs` ((notebook, parameters) each) in order (or the
    NotebookFailed that stops them), executed in threads with a warm kernel each (one per core;
    reset between notebooks): the main thread meanwhile makes the pages and gets the signals
    (nbclient sets no handler outside it). Stopped early, the kernels are killed."""
    from ..runs.execution import suspended  # (a kernel's suspension said as the runner does)

    kernels, here, said = [], threading.local(), set()

    def execute(source, parameters):
        if not hasattr(here, "kernel"):
            here.kernel = WarmKernel()
            kernels.append(here.kernel)
        names = import_papermill().inspect_notebook(source)  # its `parameters` cell's
        values = {name: value for name, value in parameters.items() if name in names}
        here.kernel.prepare(cwd, {})
        execute_notebook(source, staging / f"executed-{source.name}", values, kernel=here.kernel)
        return clean_notebook(nbformat.read(staging / f"executed-{source.name}", 4), {
            name: values[name] for name in KEPT_PARAMETERS if name in values})

    def results():
        for future in futures:
            while not future.done():  # short waits: a signal reaches the main thread at once
                wait([future], timeout=0.2)
                for line in suspended(said, kernels):  # a kernel stopped: said, not waited on
                    print(line, file=sys.stderr)
            error = future.exception()
            yield error if isinstance(error, NotebookFailed) else NotebookFailed(
                f"{type(error).__name__}: {error}") if error else future.result()

    pool = ThreadPoolExecutor(max(1, min(len(jobs), os.cpu_count() or 1)))
    futures = [pool.submit(execute, *job) for job in jobs]
    try:
        yield results()
    finally:
        if [future for future in futures if not future.cancel() and not future.done()]:
            for name in ("traitlets", "papermill"):  # "Kernel died ...": the caller says why
                logging.getLogger(name).setLevel(logging.CRITICAL)
            for kernel in kernels:
                kernel.kill()
        pool.shutdown(wait=True)  # a thread alive at exit: the process dies of SIGINT instead
        for kernel in kernels:
            kernel.stop()


def _install(staged):
    """Put each staged content in place of its target -> the targets changed: all to hidden
    temporaries beside their targets first (a full disk there replaces nothing), then renamed.
    A temporary a kill left (those milliseconds) is removed by the next summary."""
    moves = []
    try:
        for target, content in staged.items():
            for stale in stale_temporaries(target):
                stale.unlink(missing_ok=True)
            new = content.encode("utf-8") if isinstance(content, str) else content
            if target.is_file() and target.read_bytes() == new:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                             suffix=".tmp")
            moves.append((temporary, target))
            with os.fdopen(fd, "wb") as handle:
                os.fchmod(fd, 0o644)
                handle.write(new)
                handle.flush()
                os.fsync(fd)
        for temporary, target in moves:  # renames only: nothing left to fail for want of space
            os.replace(temporary, target)
    except OSError as error:
        raise UsageError(f"cannot write the summary's outputs ({error.strerror or error}): free "
                         f"some space, or choose another place with --output; nothing was "
                         f"replaced") from None
    finally:
        for temporary, _ in moves:
            Path(temporary).unlink(missing_ok=True)
    return {target for _, target in moves}


def clean_notebook(nb, defaults=None):
    """`nb` (executed by papermill) without what changes from one execution to the next (the
    injected cell, papermill's metadata, timings; counts renumbered), `defaults` (name -> value)
    as its parameters (re-run by hand, it reads the same records). nbconvert's preprocessor
    leaves markdown cells' metadata: written by hand."""
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    nb.metadata.pop("papermill", None)
    executed = [cell for cell in nb.cells if cell.get("execution_count") is not None]
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    for count, cell in enumerate(executed, start=1):
        cell.execution_count = count
        for output in cell.outputs:
            if "execution_count" in output:
                output["execution_count"] = count
        if "parameters" in cell.metadata.get("tags", []):
            for name, value in (defaults or {}).items():  # the value: a string, a dict or a word
                cell.source = re.sub(rf"""^(\s*{name}\s*=\s*)("[^"\n]*"|{{[^}}\n]*}}|[^\s#]+)""",
                                     lambda m: m.group(1) + json.dumps(value), cell.source,
                                     count=1, flags=re.MULTILINE)
    return nb


def _html(nb, page, where):
    """`nb` as the page `page`: no code, nothing loaded from the network, relative links
    rewritten to work from the page (to the other pages for the published notebooks)."""
    from nbconvert import HTMLExporter

    heading = next((line for cell in nb.cells if cell.cell_type == "markdown"
                    for line in cell.source.splitlines() if line.startswith("# ")),
                   "# " + page.stem)
    body, _ = HTMLExporter(raw_template=OFFLINE, exclude_input=True, exclude_input_prompt=True,
                           exclude_output_prompt=True).from_notebook_node(
        nb, resources={"metadata": {"name": heading[2:].strip()}})  # the page's title
    pages = {notebook.name: html for _, notebook, html in where.pages}

    def link(match):
        path, _, anchor = match.group(1).partition("#")
        if not path or re.match(r"^([a-z]+:|/)", path):
            return match.group(0)
        target = pages.get(path) or (where.source / path).resolve()
        return f'href="{os.path.relpath(target, page.parent)}{"#" * bool(anchor)}{anchor}"'

    return re.sub(r'href="([^"]+)"', link, body)


def refresh_notebooks(names, notebooks_dir=None, stream=None):
    """Execute the notebooks `names` with their defaults, cleaned, in one kernel -> exit code."""
    stream = stream or sys.stderr
    folder = Path(notebooks_dir or NOTEBOOKS).resolve()
    try:
        with _staging() as staging, _executing([(folder / name, {}) for name in names], folder,
                                              staging) as executed:
            staged = {}
            for name, nb in zip(names, executed):
                if isinstance(nb, NotebookFailed):
                    return _failed(name, nb, stream)
                staged[folder / name] = nbformat.writes(nb) + "\n"
            _install(staged)
    except KeyboardInterrupt as stop:
        return _stopped(stop, stream)
    print(f"{', '.join(names)} executed", file=stream)
    return EXIT_OK

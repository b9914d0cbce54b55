"""`python -m helpers summary` and `python -m helpers notebooks`: publishing.

The summary executes the summary, analysis and readings notebooks over the records (papermill,
one kernel for the three), exports each to HTML without its code (nbconvert), keeps the figures
they save, and writes the README's results block from its template (`tables.readme_block`).
Over the project's results/ the executed notebooks replace those in notebooks/, the figures go
to figures/, the pages to the project's root and the README block is rewritten; over another
folder F everything goes to F-report/ (or --output), and no project file changes.

All input is checked first. Everything is made in a staging folder outside the project (the
system's temporary folder) and put in place once all of it is made: a failing notebook,
SIGTERM, SIGHUP or Ctrl-C before then leave the tree as it was. Each output then goes to a
hidden `.NAME.*.tmp` beside its target, renamed over it (a kill in those milliseconds can leave
one; the next summary removes it). Executed notebooks are cleaned (`clean_notebook`), so that a
second summary over unchanged records changes no file.
"""

import json
import logging
import os
import queue
import re
import shutil
import signal
import sys
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

from ..errors import UsageError
from ..files import (FIGURES, NOTEBOOKS, README, REPO_ROOT, RESULTS, VALIDATION, check_writable,
                     relative, stale_temporaries)
from ..runs import claims, records
from ..runs.execution import NotebookFailed, execute_notebook
from ..runs.runner import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from . import tables

PAGES = {"summary": "report.html", "analysis": "analysis.html", "readings": "readings.html"}
TEMPLATE = "readme-results.md.j2"
# What an executed notebook keeps as its defaults: re-run by hand (or by nbval) it reads the
# same records; figures_dir stays None there (show only).
KEPT_PARAMETERS = ("results_dir", "validation_dir", "overrides")
ARCHITECTURE_NOTEBOOKS = ("baseline.ipynb", "weight_sharing.ipynb", "auxiliary_loss.ipynb",
                          "best.ipynb")
# The pages load nothing from the network: no MathJax (the prose writes formulas in Unicode).
OFFLINE = "{%- extends 'lab/index.html.j2' -%}" + "".join(
    f"{{%- block {name} -%}}{{%- endblock {name} -%}}"
    for name in ("html_head_js", "html_head_js_mathjax", "html_head_js_mermaidjs"))


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised in the main thread as Ctrl-C raises KeyboardInterrupt."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


def plan(results_dir="results", validation_dir=None, output=None, notebooks_dir=None):
    """Where a summary of `results_dir` reads and writes (absolute paths), every input checked:
    a one-line UsageError before anything runs. `notebooks_dir`: a copy of the notebooks,
    executed in place (tests, the benchmark)."""
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


def _no_live_runner(*folders):
    """UsageError when a runner is writing records into one of `folders` (its claims)."""
    for experiment in sorted(p for folder in folders for p in folder.iterdir() if p.is_dir()):
        for claim in claims.others(experiment):
            who = claims.describe(claim["pid"]) if claim.get("host") == claims.HOST \
                else f"{claim.get('host')}: {claim.get('command')}"
            raise UsageError(f"a runner is writing {relative(experiment)} ({who}): run the "
                             f"summary once it has finished")


def _state(*folders):
    """The record files of `folders` as they are now (names, sizes, times)."""
    return sorted((str(p), p.stat().st_size, p.stat().st_mtime_ns) for folder in folders
                  for p in folder.glob("*/seed-*.json") if p.is_file())


def summary(results_dir="results", validation_dir=None, output=None, notebooks_dir=None,
            overrides=None, stream=None):
    """Publish the records of `results_dir` (see the module's docstring) -> exit code: 0; 1
    when a notebook fails or the records change meanwhile, 2 for a usage error in a notebook,
    128 + the signal when stopped, and then nothing is replaced. UsageError for bad input, and
    when an output cannot be written."""
    stream = stream or sys.stderr
    where = plan(results_dir, validation_dir, output, notebooks_dir)
    overrides = tables.checked_overrides(overrides)
    _no_live_runner(where.results, where.validation)
    if os.environ.get("MNIST_ROOT"):  # the kernel works in another folder
        os.environ["MNIST_ROOT"] = str(Path(os.environ["MNIST_ROOT"]).resolve())
    before, made = _state(where.results, where.validation), []
    try:
        with _staging() as staging:
            made = [p for p in (*where.output.parents[::-1], where.output) if not p.exists()]
            where.output.mkdir(parents=True, exist_ok=True)
            parameters = {"results_dir": where.results, "validation_dir": where.validation,
                          "overrides": overrides, "figures_dir": str(staging)}
            with _executing([(page[0], parameters) for page in where.pages], where.output,
                            staging) as executed:
                found = tables.published(records.load(where.results), overrides)
                _tell_left_out(found, stream)
                staged = {}
                if where.readme is not None:
                    staged[where.readme] = tables.readme_text(
                        where.readme.read_text(encoding="utf-8"),
                        tables.readme_block(found, where.source / TEMPLATE))
                for source, notebook, page in where.pages:
                    nb = next(executed)
                    if isinstance(nb, NotebookFailed):
                        return _failed(source.name, nb, stream)
                    staged[notebook], staged[page] = _notebook_text(nb), _html(nb, page, where)
            staged.update({where.figures / f.name: f.read_bytes() for f in staging.glob("*.png")})
            if _state(where.results, where.validation) != before:
                return _failed("the summary", NotebookFailed(
                    "records changed meanwhile (a runner writing them?); run it again"), stream)
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
    print(f"summary: {len(found.records)} records published; {len(where.pages)} notebooks "
          f"executed in {relative(where.output)}, {', '.join(p[2].name for p in where.pages)} "
          f"in {relative(where.html)}, {sum(t.suffix == '.png' for t in staged)} figures in "
          f"{relative(where.figures)}", file=stream)
    return EXIT_OK


def _stopped(stop, stream):
    signum = getattr(stop, "signum", signal.SIGINT)
    print(f"stopped by {signal.Signals(signum).name}: nothing replaced", file=stream)
    return 128 + signum


def _failed(what, failure, stream):
    print(f"error: {what} failed: {failure.message}; nothing was replaced", file=stream)
    return EXIT_USAGE if failure.usage else EXIT_FAILED


def _tell_left_out(found, stream):
    """One line per damaged record, and one per reason records were left out."""
    for path, why in found.found.damaged:
        print(f"warning: damaged record {relative(path)} ({why}) is left out; "
              f"`python -m helpers run` redoes it", file=stream)
    reasons = {}
    for name, why in found.left_out:
        reasons.setdefault(why, []).append(name)
    for why, names in reasons.items():
        more = f" and {len(names) - 3} more" if len(names) > 3 else ""
        print(f"warning: left out, not their catalogue row's records ({why}): "
              f"{', '.join(names[:3])}{more}", file=stream)


@contextmanager
def _staging():
    """A folder outside the project for everything being made, removed however this ends;
    meanwhile SIGTERM and SIGHUP raise `Stopped`."""
    def stop(signum, frame):
        raise Stopped(signum)

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
    """The notebooks of `jobs` ((notebook, parameters) each) executed one after the other in one
    kernel (runs.kernels.WarmKernel, its namespace reset between them) in a thread of their
    own, while the main thread renders the README and the pages and receives the signals
    (nbclient installs no signal handler outside the main thread). Yields an iterator of the
    cleaned notebooks, ending with the NotebookFailed that stopped them, if one did. When the
    caller stops early, the kernel is killed (which ends its notebook) and the thread awaited."""
    from ..runs.kernels import WarmKernel  # jupyter_client: only where notebooks run

    done, kernel, stopping = queue.Queue(), WarmKernel(), threading.Event()

    def work():
        try:
            kernel.start(cwd, {})
            for source, parameters in jobs:
                names = parameter_names(_read(source))  # papermill would inject any other
                values = {name: _relative(value, cwd) if isinstance(value, Path) else value
                          for name, value in parameters.items() if name in names}
                if stopping.is_set():
                    return
                execute_notebook(source, staging / f"executed-{source.name}", values, cwd,
                                 km=kernel.manager(SimpleNamespace(cwd=cwd, environment={})))
                done.put(clean_notebook(_read(staging / f"executed-{source.name}"), {
                    name: values[name] for name in KEPT_PARAMETERS if name in values}))
        except NotebookFailed as failure:
            done.put(failure)
        except BaseException as error:  # the main thread says it
            done.put(NotebookFailed(f"{type(error).__name__}: {error}"))
        finally:
            kernel.stop()

    def results():
        for _ in jobs:
            while True:  # in short waits, so that a signal reaches the main thread at once
                try:
                    yield done.get(timeout=0.2)
                    break
                except queue.Empty:
                    continue

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        yield results()
    finally:
        stopping.set()
        if thread.is_alive() and kernel.km is not None and kernel.km.has_kernel:
            for name in ("traitlets", "papermill"):  # "Kernel died ...": the caller says why
                logging.getLogger(name).setLevel(logging.CRITICAL)
            kernel.km.provisioner.process.kill()
        thread.join(timeout=30)


def _read(path):
    import nbformat

    return nbformat.read(path, as_version=4)


def _relative(path, start):
    """`path` as a kernel working in `start` should see it: relative when both lie in the same
    folder tree, so that no machine path lands in a notebook; else absolute."""
    path, start = Path(path).resolve(), Path(start).resolve()
    if start.parent == path or start.parent in path.parents:
        return os.path.relpath(path, start)
    return str(path)


def _install(staged):
    """Put each staged content (text or bytes) in place of its target -> the targets that
    changed. First every new content goes to a hidden temporary file beside its target, flushed
    to disk (a full disk there replaces nothing), then each is renamed over its target.
    Temporaries a kill left beside a target go first."""
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


def parameter_names(nb):
    """The names assigned in `nb`'s cell tagged `parameters`."""
    for cell in nb.cells:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            return re.findall(r"^(\w+)\s*=", cell.source, re.MULTILINE)
    return []


def clean_notebook(nb, defaults=None):
    """`nb` (executed by papermill) without what changes from one execution to the next: the
    injected-parameters cell, papermill's metadata, each cell's timings; execution counts
    renumbered 1, 2, ...; `defaults` (name -> value) as the parameters cell's values, so that
    the notebook reads the same records when re-run by hand. Cell ids are kept."""
    nb.cells = [cell for cell in nb.cells
                if "injected-parameters" not in cell.get("metadata", {}).get("tags", [])]
    nb.metadata.pop("papermill", None)
    count = 0
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if "parameters" in cell.metadata.get("tags", []):
            for name, value in (defaults or {}).items():  # the value: a string, a dict or a word
                cell.source = re.sub(rf"""^(\s*{name}\s*=\s*)("[^"\n]*"|{{[^}}\n]*}}|[^\s#]+)""",
                                     lambda m: m.group(1) + json.dumps(value), cell.source,
                                     count=1, flags=re.MULTILINE)
        if cell.get("execution_count") is not None:
            count += 1
            cell.execution_count = count
            for output in cell.get("outputs", []):
                if output.get("output_type") == "execute_result":
                    output["execution_count"] = count
    return nb


def _notebook_text(nb):
    import nbformat

    return nbformat.writes(nb).rstrip("\n") + "\n"


def _html(nb, page, where):
    """`nb` (a notebook of `where.source`) as the page `page`: without its code, loading nothing
    from the network, its relative links rewritten to work from the page's folder (to the
    other pages for the published notebooks)."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(raw_template=OFFLINE, exclude_input=True, exclude_input_prompt=True,
                           exclude_output_prompt=True).from_notebook_node(nb)
    pages = {notebook.name: html for _, notebook, html in where.pages}

    def link(match):
        path, _, anchor = match.group(1).partition("#")
        if not path or re.match(r"^([a-z]+:|/)", path):
            return match.group(0)
        target = pages.get(path) or (where.source / path).resolve()
        return f'href="{os.path.relpath(target, page.parent)}{"#" * bool(anchor)}{anchor}"'

    return re.sub(r'href="([^"]+)"', link, body)


def refresh_notebooks(names=ARCHITECTURE_NOTEBOOKS, notebooks_dir=None, stream=None):
    """Execute each notebook of `names` in place with its own defaults (one round, seed 0,
    nothing written), cleaned like the summary's, in one kernel; they are replaced once all
    ran to their end. -> exit code."""
    stream = stream or sys.stderr
    folder = Path(notebooks_dir or NOTEBOOKS).resolve()
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise UsageError(f"no notebook {', '.join(missing)} in {relative(folder)}: choose among "
                         f"{', '.join(ARCHITECTURE_NOTEBOOKS)}")
    try:
        with _staging() as staging, _executing([(folder / name, {}) for name in names], folder,
                                              staging) as executed:
            staged = {}
            for name, nb in zip(names, executed):
                if isinstance(nb, NotebookFailed):
                    return _failed(name, nb, stream)
                staged[folder / name] = _notebook_text(nb)
            _install(staged)
    except KeyboardInterrupt as stop:
        return _stopped(stop, stream)
    print(f"{', '.join(names)} executed", file=stream)
    return EXIT_OK

"""The notebook runner behind `python -m helpers run` and `python -m helpers summary`.

Each run is one (experiment, seed): the experiment's notebook (from the catalogue) executed by
papermill with the parameters {experiment, seed, results_dir, overrides}. The executed notebook
goes to runs/<experiment>/seed-<k>.ipynb (the log of that run), the record to
results/<experiment>/seed-<k>.json (written atomically by the notebook itself).

How the pieces fit, top to bottom:
- `plan()` checks everything the user asked for (experiments, seeds, overrides, folders, MNIST)
  and raises one-line `UsageError`s before anything starts or is written.
- `run()` skips runs whose valid record exists (a rerun resumes), then keeps up to `workers`
  runs going in a pool (`pools.LocalPool`: forked worker processes, each keeping one warm
  kernel and running notebook after notebook in it) under one tqdm progress bar. A failed
  run is listed at the end; the others go on.
- Two runners on one results folder: each run is taken under a per-run lock file
  (results/<experiment>/.seed-<k>.lock, `filelock`, i.e. flock: the OS drops it when its holder
  dies, so no stale lock outlives a killed runner). A runner that finds a run locked does other
  runs first, then waits for the lock and finds the record done (or does the run itself if the
  other runner failed it).
- Ctrl-C / SIGTERM: the workers interrupt their kernels (SIGINT, so the notebook's atomic write
  cleans its temporary file), then stop; finished records stay; the rerun does the rest.
  Exit codes: 0 all done, 1 some runs failed, 2 usage error, 130 SIGINT, 143 SIGTERM.

Where the runs execute is helpers/pools.py: `LocalPool`, or `DaskPool` for `--scheduler`; any
object with the same five methods can take their place (`run(..., pool=...)`).
"""

import os
import re
import shlex
import signal
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from . import experiments as catalogue
from . import mnist, pools, results
from .errors import UsageError

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
INTERRUPT_GRACE = 20  # seconds the workers get to stop their kernels before they are killed
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


# ---------------------------------------------------------------------------------------------
# What to run
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)  # identity: a run is a dict key
class Run:
    """One (experiment, seed) and everything a worker needs to execute it."""

    experiment: str
    seed: int
    notebook: Path      # the experiment's notebook
    output: Path        # the executed notebook: runs/<experiment>/seed-<k>.ipynb
    record: Path        # results/<experiment>/seed-<k>.json
    parameters: dict    # what papermill injects
    cwd: Path           # the kernel's working directory: the notebooks folder
    environment: dict = field(default_factory=dict)  # set in the worker (and so the kernel)

    @property
    def name(self):
        return f"{self.experiment} seed {self.seed}"


_SEEDS = re.compile(r"^\d+(-\d+)?$")


def parse_seeds(text):
    """'0-9' | '0,3,5' | '0-2,7' -> sorted list of distinct seeds; UsageError if malformed."""
    seeds = set()
    for part in str(text).replace(" ", "").split(","):
        if not _SEEDS.match(part):
            raise UsageError(f"malformed seed list {text!r}: write seeds like 0-9, 0,3,5 or 0-2,7")
        first, _, last = part.partition("-")
        first, last = int(first), int(last or first)
        if last < first:
            raise UsageError(f"malformed seed list {text!r}: the range {part} runs backwards, "
                             f"write {last}-{first}")
        seeds.update(range(first, last + 1))
    return sorted(seeds)


def expand_experiments(names):
    """Experiment names, `all` and group names -> catalogue names, in order.

    `all` is every row measured on the test pairs; the `ablation` rows, which measure
    validation pairs and belong in validation/, run only when named (by row or group).
    """
    if not names:
        raise UsageError("name the experiments to run, or all "
                         "(python -m helpers list shows them)")
    chosen = []
    for name in names:
        if name == "all":
            rows = [row for row in catalogue.CATALOGUE if "ablation" not in _groups(row)]
        elif name in catalogue.EXPERIMENTS:
            rows = [catalogue.EXPERIMENTS[name]]
        else:
            rows = [row for row in catalogue.CATALOGUE if name in _groups(row)]
            if not rows:
                catalogue.get(name)  # raises the catalogue's one-line UsageError
        chosen += [row["name"] for row in rows if row["name"] not in chosen]
    return chosen


def _groups(row):
    group = row.get("group") or ()
    return (group,) if isinstance(group, str) else tuple(group)


def notebook_path(path, notebooks_dir):
    """`path` as the kernel (cwd = notebooks folder) should see it: relative when inside the
    project (no absolute machine path lands in a notebook), else absolute."""
    path, notebooks_dir = Path(path).resolve(), Path(notebooks_dir).resolve()
    project = notebooks_dir.parent
    if path == project or project in path.parents:
        return os.path.relpath(path, notebooks_dir)
    return str(path)


def _check_writable(folder, what, option):
    """UsageError unless `folder` is, or can be created as, a writable folder. Writes nothing
    that stays: a missing folder is created later, when the batch starts."""
    folder = Path(folder).resolve()
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{what} folder {folder} cannot be created: {existing} is a file, "
                         f"not a folder; choose another with {option}")
    try:  # a real probe: os.access says yes to root even on a read-only folder
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise UsageError(f"{what} folder {folder} is not writable ({error.strerror}): "
                         f"choose another with {option}, or fix its permissions") from None


def plan(names, seeds="0-9", overrides=None, results_dir="results", runs_dir="runs",
         notebooks_dir=None, check_data=True):
    """Every Run asked for, after checking all of the input; raises UsageError on bad input."""
    notebooks_dir = Path(notebooks_dir or NOTEBOOKS_DIR).resolve()
    names = expand_experiments(names)
    if isinstance(seeds, str):
        seeds = parse_seeds(seeds)
    elif not seeds or any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in seeds):
        raise UsageError(f"seeds must be integers >= 0, got {seeds!r}: write them like 0-9")
    seeds = sorted(set(seeds))
    overrides = dict(overrides or {})
    for name in ("experiment", "seed"):
        if name in overrides:
            raise UsageError(f"-p {name} is not allowed here: name experiments as arguments "
                             f"and seeds with --seeds")
    checked = {}
    for name in names:
        params = catalogue.resolve(name, seed=seeds[-1], **overrides)
        checked[name] = {key: params[key] for key in overrides}  # converted types
        notebook = notebooks_dir / catalogue.get(name)["notebook"]
        if not notebook.is_file():
            raise UsageError(f"notebook {notebook} of experiment {name} is missing: restore it "
                             f"(git checkout notebooks) or choose another notebooks folder")
    for folder, what, option in [(results_dir, "results", "--results"), (runs_dir, "runs", "--runs")]:
        _check_writable(folder, what, option)
        for name in names:
            if (Path(folder) / name).exists() and not (Path(folder) / name).is_dir():
                raise UsageError(f"{Path(folder) / name} is a file, where the {what} of {name} "
                                 f"go: move it away, or choose another folder with {option}")
    environment = {}
    if check_data:
        # DataError (a UsageError) now, rather than in every run, when MNIST is missing or damaged
        root = mnist.check_data_root(overrides.get("data_root"))
        # The kernel runs in the notebooks folder: a relative MNIST_ROOT would point elsewhere.
        if os.environ.get("MNIST_ROOT"):
            environment["MNIST_ROOT"] = str(root)
        for name in names:
            if "data_root" in overrides:
                checked[name]["data_root"] = notebook_path(root, notebooks_dir)
    results_dir, runs_dir = Path(results_dir).resolve(), Path(runs_dir).resolve()
    return [Run(experiment=name, seed=seed,
                notebook=notebooks_dir / catalogue.get(name)["notebook"],
                output=runs_dir / name / f"seed-{seed}.ipynb",
                record=results.record_path(results_dir, name, seed),
                parameters={"experiment": name, "seed": seed,
                            "results_dir": notebook_path(results_dir, notebooks_dir),
                            **checked[name]},
                cwd=notebooks_dir, environment=environment)
            for name in names for seed in seeds]


# ---------------------------------------------------------------------------------------------
# The batch
# ---------------------------------------------------------------------------------------------
@dataclass
class BatchResult:
    done: list = field(default_factory=list)          # runs executed here
    skipped: list = field(default_factory=list)       # valid record already there
    elsewhere: list = field(default_factory=list)     # done meanwhile by another runner
    failed: list = field(default_factory=list)        # (run, message)
    usage_error: str = ""                             # a run failed with a UsageError
    interrupted_by: int = 0                           # the signal that stopped the batch
    not_done: list = field(default_factory=list)      # runs left for the rerun

    @property
    def exit_code(self):
        if self.interrupted_by:
            return 128 + self.interrupted_by
        if self.usage_error:
            return EXIT_USAGE
        return EXIT_FAILED if self.failed else EXIT_OK


def _complete(run):
    """True when `run` has a valid record (a damaged one is redone)."""
    try:
        results.read_record(run.record)
        return True
    except results.DamagedRecord:
        return False


def _check_same_parameters(run, overrides):
    """UsageError when `run`'s existing record was made with other parameters than asked now:
    skipping it would silently not run what was asked, redoing it would replace a result."""
    recorded = results.read_record(run.record)["params"]
    asked = catalogue.resolve(run.experiment, seed=run.seed, **(overrides or {}))
    differ = [f"{key} {recorded.get(key)!r} there, {value!r} asked" for key, value in asked.items()
              if key not in catalogue.RUN_ONLY and recorded.get(key) != value]
    if differ:
        raise UsageError(f"{_relative(run.record)} was made with other parameters "
                         f"({'; '.join(differ[:3])}): write these runs elsewhere with "
                         f"--results DIR, or replace the records with --force")


def _stale_temporaries(record):
    """Temporary files a killed write_record may have left beside `record`."""
    return list(record.parent.glob(f".{record.name}.*.tmp"))


class _Locks:
    """Per-run lock files beside the records, so two runners never do one run at once."""

    def __init__(self):
        import filelock

        self._filelock = filelock
        self._held = {}

    def try_acquire(self, run):
        run.record.parent.mkdir(parents=True, exist_ok=True)
        lock = self._filelock.FileLock(run.record.parent / f".{run.record.stem}.lock")
        try:
            lock.acquire(blocking=False)
        except self._filelock.Timeout:
            return False
        self._held[run] = lock
        return True

    def release(self, run):
        # A killed write leaves a temporary file; nobody else writes this record while we hold it.
        for path in _stale_temporaries(run.record):
            path.unlink(missing_ok=True)
        self._held.pop(run).release()

    def release_all(self):
        for run in list(self._held):
            self.release(run)


def _relative(path):
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def run(experiments=("all",), seeds="0-9", workers=None, results_dir="results", runs_dir="runs",
        force=False, overrides=None, notebooks_dir=None, command=None, pool=None,
        stream=None):
    """Execute every (experiment, seed) asked for that has no valid record yet; -> BatchResult.

    Raises UsageError, before anything starts, for any bad input. `command` is what the user
    typed, for the resume message; `pool` replaces the local worker processes (e.g. Dask).
    """
    stream = stream or sys.stderr
    if isinstance(experiments, str):
        experiments = [experiments]
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise UsageError(f"--workers must be an integer >= 1, got {workers!r}")
    runs = plan(experiments, seeds, overrides, results_dir, runs_dir, notebooks_dir)
    command = command or "python -m helpers " + shlex.join(sys.argv[1:])
    started = time.time()
    batch = BatchResult()
    todo = deque()
    for run_ in runs:
        if not force and _complete(run_):
            _check_same_parameters(run_, overrides)
            batch.skipped.append(run_)
        else:
            todo.append(run_)
    if batch.skipped:
        print(f"skipping {len(batch.skipped)} of {len(runs)} runs: their records are already in "
              f"{_relative(runs[0].record.parent.parent)} (--force redoes them)", file=stream)
    if not todo:
        return batch

    from tqdm import tqdm

    tqdm.monitor_interval = 0  # no monitor thread: the workers are forked from this process
    workers = min(workers or os.cpu_count() or 1, len(todo))
    local = pool is None  # a pool passed in is the caller's to close
    pool = pools.LocalPool() if local else pool  # (an idle pool has len 0: falsy)
    locks = _Locks()
    waiting = []  # runs another runner holds: tried again when nothing else can start
    stop = {"signal": 0, "hard": False}

    def on_signal(signum, frame):
        stop["hard"] = bool(stop["signal"])  # a second Ctrl-C: kill now
        stop["signal"] = stop["signal"] or signum

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    bar = tqdm(total=len(todo), desc="runs", unit="run", file=stream, smoothing=0.1,
               mininterval=0.5, dynamic_ncols=True)
    bar.set_postfix_str("failed 0")
    try:
        while (todo or waiting or len(pool)) and not stop["signal"] and not batch.usage_error:
            candidates = list(todo) + waiting
            todo.clear()
            waiting = []
            for candidate in candidates:
                if len(pool) >= workers or not locks.try_acquire(candidate):
                    (todo if len(pool) >= workers else waiting).append(candidate)
                    continue
                if _complete(candidate) and (
                        not force or candidate.record.stat().st_mtime >= started):
                    batch.elsewhere.append(candidate)  # another runner did it meanwhile
                    locks.release(candidate)
                    bar.update()
                    continue
                for path in _stale_temporaries(candidate.record):
                    path.unlink(missing_ok=True)
                pool.submit(candidate)
            for finished, outcome in pool.wait(0.5):
                locks.release(finished)
                if outcome["status"] == "interrupted":  # Ctrl-C reached the worker first
                    batch.not_done.append(finished)
                    continue
                bar.update()
                if outcome["status"] == "done":
                    batch.done.append(finished)
                    continue
                batch.failed.append((finished, outcome["message"]))
                bar.set_postfix_str(f"failed {len(batch.failed)}")
                bar.write(f"failed: {finished.name}: {outcome['message']}", file=stream)
                if outcome["usage"]:
                    batch.usage_error = outcome["message"]
        # Interrupted, or a usage error: no new runs; those going finish (usage error) or are
        # interrupted (signal), and killed with their kernels if they do not stop in time.
        deadline = None
        while len(pool) and not stop["hard"]:
            if stop["signal"] and deadline is None:
                pool.interrupt()
                deadline = time.monotonic() + INTERRUPT_GRACE
            if deadline is not None and time.monotonic() > deadline:
                break
            for finished, outcome in pool.wait(0.5):
                locks.release(finished)
                if outcome["status"] == "done":
                    batch.done.append(finished)
                    bar.update()
                elif outcome["status"] == "interrupted":
                    batch.not_done.append(finished)
                else:
                    batch.failed.append((finished, outcome["message"]))
        for killed in pool.kill():
            locks.release(killed)
            batch.not_done.append(killed)
    finally:
        if local:
            pool.close()  # the idle workers and their warm kernels
        bar.close()
        locks.release_all()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    batch.interrupted_by = stop["signal"]
    batch.not_done += list(todo) + waiting
    _print_summary(batch, len(runs), command, stream)
    return batch


def _print_summary(batch, total, command, stream):
    parts = [f"{len(batch.done)} done"]
    if batch.skipped:
        parts.append(f"{len(batch.skipped)} skipped (record already there)")
    if batch.elsewhere:
        parts.append(f"{len(batch.elsewhere)} done by another runner")
    if batch.failed:
        parts.append(f"{len(batch.failed)} failed")
    if batch.not_done:
        parts.append(f"{len(batch.not_done)} not done")
    print(f"{total} run{'s' * (total != 1)}: {', '.join(parts)}", file=stream)
    for failed, message in batch.failed:
        # no executed notebook when the kernel died or never started: its log says why
        log = failed.output.with_suffix(".log")
        evidence = (f"  (executed notebook: {_relative(failed.output)})" if failed.output.is_file()
                    else f"  (kernel log: {_relative(log)})" if log.is_file() else "")
        print(f"  failed: {failed.name}: {message}{evidence}", file=stream)
    if batch.interrupted_by:
        name = signal.Signals(batch.interrupted_by).name
        print(f"interrupted by {name}: finished records are kept; run the same command again "
              f"to do the {len(batch.not_done)} missing runs: {command}", file=stream)
    elif batch.usage_error:
        print(f"stopped: {batch.usage_error}", file=stream)


# ---------------------------------------------------------------------------------------------
# The summary notebook and report.html
# ---------------------------------------------------------------------------------------------
def summary(results_dir="results", figures_dir="figures", report="report.html",
            notebooks_dir=None, stream=None, readme=None):
    """Execute the summary notebook, then the analysis notebook where there is one, in place
    over `results_dir`; export each to HTML without code (`report`, and analysis.html beside
    it); rewrite the results section of `readme` when one is given.
    -> exit code: 0, or 1 when a notebook fails (it is then left as it was)."""
    from . import report as tables

    stream = stream or sys.stderr
    notebooks_dir = Path(notebooks_dir or NOTEBOOKS_DIR).resolve()
    notebook = notebooks_dir / "summary.ipynb"
    if not notebook.is_file():
        raise UsageError(f"summary notebook {notebook} is missing: restore it "
                         f"(git checkout notebooks/summary.ipynb)")
    if not Path(results_dir).is_dir():
        raise UsageError(f"results folder {results_dir} does not exist: run experiments first "
                         f"(python -m helpers run all), or choose it with --results")
    _check_writable(figures_dir, "figures", "--figures")
    _check_writable(notebooks_dir, "notebooks", "--notebooks")
    _check_writable(Path(report).resolve().parent, "report", "--report")
    records, damaged = results.scan(results_dir)
    for path, why in damaged:
        print(f"warning: damaged record {_relative(path)} ({why}) is left out; "
              f"`python -m helpers run` redoes it", file=stream)
    if not records:
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
        changed = tables.update_readme(readme, tables.load(results_dir))
        print(f"{_relative(readme)}: results section {'rewritten' if changed else 'up to date'}",
              file=stream)
    print(f"summary: {len(records)} records; "
          f"{', '.join(_relative(page) for page, _ in pages)} executed, "
          f"{', '.join(_relative(html) for _, html in pages)} written", file=stream)
    return EXIT_OK


def _execute_in_place(notebook, parameters, html, notebooks_dir, stream):
    """Execute `notebook` with papermill into a temporary file beside it, rename it over the
    notebook (a failure leaves the notebook as it was) and export it to `html`. -> exit code."""
    papermill = pools.import_papermill()
    import nbformat

    from .kernels import KERNEL, KERNEL_START_TIMEOUT

    fd, executed = tempfile.mkstemp(dir=notebooks_dir, prefix=f".{notebook.stem}-",
                                    suffix=".ipynb")
    os.close(fd)
    try:
        papermill.execute_notebook(
            str(notebook), executed, kernel_name=KERNEL, cwd=str(notebooks_dir),
            progress_bar=False, start_timeout=KERNEL_START_TIMEOUT, parameters=parameters)
    except papermill.PapermillExecutionError as error:
        Path(executed).unlink(missing_ok=True)
        print(f"error: {notebook.name} failed: {pools.error_line(error)}", file=stream)
        return EXIT_USAGE if error.ename in pools.USAGE_ERRORS else EXIT_FAILED
    except Exception as error:  # the kernel died or would not start
        Path(executed).unlink(missing_ok=True)
        print(f"error: {notebook.name} failed: {type(error).__name__}: "
              f"{pools.first_line(error)}", file=stream)
        return EXIT_FAILED
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
    fd, temporary = tempfile.mkstemp(dir=report.resolve().parent, prefix=f".{report.name}.",
                                     suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(body)
        os.replace(temporary, report)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise

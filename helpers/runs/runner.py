"""The batch runner behind `python -m helpers run`.

A run is one (experiment, seed); the runner executes it as a `Job`: the experiment's notebook
(from the catalogue) executed by papermill with the parameters {experiment, seed, results_dir,
overrides}. The executed notebook goes to runs/<experiment>/seed-<k>.ipynb (the log of that
run), the record to results/<experiment>/seed-<k>.json (written atomically by the notebook).

How the pieces fit, top to bottom:
- `plan()` checks everything the user asked for (experiments, seeds, overrides, folders, MNIST)
  and raises one-line `UsageError`s before anything starts or is written.
- `run_batch()` skips runs whose valid record exists (a rerun resumes), then keeps up to
  `workers` jobs going in a pool (`pools.LocalPool`: forked worker processes, each keeping one
  warm kernel and running notebook after notebook in it) under one tqdm progress bar. A failed
  run is listed at the end; the others go on.
- Two runners on one results folder: each run is taken under a per-run lock file
  (results/<experiment>/.seed-<k>.lock, `filelock`, i.e. flock: the OS drops it when its holder
  dies, so no stale lock outlives a killed runner). A runner that finds a run locked does other
  runs first, then waits for the lock and finds the record done (or does the run itself if the
  other runner failed it).
- Ctrl-C / SIGTERM: the workers interrupt their kernels (SIGINT, so the notebook's atomic write
  cleans its temporary file), then stop; finished records stay; the rerun does the rest.
  Exit codes: 0 all done, 1 some runs failed, 2 usage error, 130 SIGINT, 143 SIGTERM.

Where the jobs execute is `pools`: `LocalPool`, or `DaskPool` for `--scheduler`; any object
with the same methods can take their place (`run_batch(..., pool=...)`).
"""

import os
import re
import shlex
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from .. import catalogue
from ..catalogue.parameters import RUN_ONLY
from ..errors import UsageError
from ..files import NOTEBOOKS, check_writable, relative, stale_temporaries
from ..science import mnist
from . import pools, records

INTERRUPT_GRACE = 20  # seconds the workers get to stop their kernels before they are killed
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


# ---------------------------------------------------------------------------------------------
# What to run
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)  # identity: a job is a dict key
class Job:
    """One run (experiment, seed) and everything a worker needs to execute its notebook."""

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


def notebook_path(path, notebooks_dir):
    """`path` as the kernel (cwd = notebooks folder) should see it: relative when inside the
    project (no absolute machine path lands in a notebook), else absolute."""
    path, notebooks_dir = Path(path).resolve(), Path(notebooks_dir).resolve()
    project = notebooks_dir.parent
    if path == project or project in path.parents:
        return os.path.relpath(path, notebooks_dir)
    return str(path)


def plan(names, seeds="0-9", overrides=None, results_dir="results", runs_dir="runs",
         notebooks_dir=None):
    """Every Job asked for, after checking all of the input; raises UsageError on bad input."""
    notebooks_dir = Path(notebooks_dir or NOTEBOOKS).resolve()
    names = catalogue.expand(names)
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
        check_writable(folder, what, option)
        for name in names:
            if (Path(folder) / name).exists() and not (Path(folder) / name).is_dir():
                raise UsageError(f"{Path(folder) / name} is a file, where the {what} of {name} "
                                 f"go: move it away, or choose another folder with {option}")
    environment = {}
    # DataError (a UsageError) now, rather than in every run, when MNIST is missing or damaged
    root = mnist.check_data_root(overrides.get("data_root"))
    # The kernel runs in the notebooks folder: a relative MNIST_ROOT would point elsewhere.
    if os.environ.get("MNIST_ROOT"):
        environment["MNIST_ROOT"] = str(root)
    for name in names:
        if "data_root" in overrides:
            checked[name]["data_root"] = notebook_path(root, notebooks_dir)
    results_dir, runs_dir = Path(results_dir).resolve(), Path(runs_dir).resolve()
    return [Job(experiment=name, seed=seed,
                notebook=notebooks_dir / catalogue.get(name)["notebook"],
                output=runs_dir / name / f"seed-{seed}.ipynb",
                record=records.record_path(results_dir, name, seed),
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
    done: list = field(default_factory=list)          # jobs executed here
    skipped: list = field(default_factory=list)       # valid record already there
    elsewhere: list = field(default_factory=list)     # done meanwhile by another runner
    failed: list = field(default_factory=list)        # (job, message)
    usage_error: str = ""                             # a job failed with a UsageError
    interrupted_by: int = 0                           # the signal that stopped the batch
    not_done: list = field(default_factory=list)      # jobs left for the rerun

    @property
    def exit_code(self):
        if self.interrupted_by:
            return 128 + self.interrupted_by
        if self.usage_error:
            return EXIT_USAGE
        return EXIT_FAILED if self.failed else EXIT_OK


def _check_same_parameters(job, overrides):
    """UsageError when `job`'s existing record was made with other parameters than asked now:
    skipping it would silently not run what was asked, redoing it would replace a result."""
    recorded = records.read_record(job.record)["params"]
    asked = catalogue.resolve(job.experiment, seed=job.seed, **(overrides or {}))
    differ = [f"{key} {recorded.get(key)!r} there, {value!r} asked" for key, value in asked.items()
              if key not in RUN_ONLY and recorded.get(key) != value]
    if differ:
        raise UsageError(f"{relative(job.record)} was made with other parameters "
                         f"({'; '.join(differ[:3])}): write these runs elsewhere with "
                         f"--results DIR, or replace the records with --force")


class _Locks:
    """Per-run lock files beside the records, so two runners never do one run at once."""

    def __init__(self):
        import filelock

        self._filelock = filelock
        self._held = {}

    def try_acquire(self, job):
        job.record.parent.mkdir(parents=True, exist_ok=True)
        lock = self._filelock.FileLock(job.record.parent / f".{job.record.stem}.lock")
        try:
            lock.acquire(blocking=False)
        except self._filelock.Timeout:
            return False
        self._held[job] = lock
        return True

    def release(self, job):
        # A killed write leaves a temporary file; nobody else writes this record while we hold it.
        for path in stale_temporaries(job.record):
            path.unlink(missing_ok=True)
        self._held.pop(job).release()

    def release_all(self):
        for job in list(self._held):
            self.release(job)


def run_batch(experiments=("all",), seeds="0-9", workers=None, results_dir="results",
              runs_dir="runs", force=False, overrides=None, notebooks_dir=None, command=None,
              pool=None, stream=None):
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
    jobs = plan(experiments, seeds, overrides, results_dir, runs_dir, notebooks_dir)
    command = command or "python -m helpers " + shlex.join(sys.argv[1:])
    started = time.time()
    batch = BatchResult()
    todo = deque()
    for job in jobs:
        if not force and records.is_complete(job.record):
            _check_same_parameters(job, overrides)
            batch.skipped.append(job)
        else:
            todo.append(job)
    if batch.skipped:
        print(f"skipping {len(batch.skipped)} of {len(jobs)} runs: their records are already in "
              f"{relative(jobs[0].record.parent.parent)} (--force redoes them)", file=stream)
    if not todo:
        return batch

    from tqdm import tqdm

    tqdm.monitor_interval = 0  # no monitor thread: the workers are forked from this process
    local = pool is None  # a pool passed in is the caller's to close
    pool = pools.LocalPool() if local else pool  # (an idle pool has len 0: falsy)
    workers = min(workers or pool.capacity(), len(todo))
    locks = _Locks()
    waiting = []  # jobs another runner holds: tried again when nothing else can start
    stop = {"signal": 0, "hard": False}

    def on_signal(signum, frame):
        stop["hard"] = bool(stop["signal"])  # a second Ctrl-C: kill now
        stop["signal"] = stop["signal"] or signum

    def take(job, outcome):
        """Book the end of `job` in the batch."""
        locks.release(job)
        if outcome.status == "interrupted":  # Ctrl-C reached the worker first
            batch.not_done.append(job)
            return
        bar.update()
        if outcome.status == "done":
            batch.done.append(job)
            return
        batch.failed.append((job, outcome.message))
        bar.set_postfix_str(f"failed {len(batch.failed)}")
        bar.write(f"failed: {job.name}: {outcome.message}", file=stream)
        if outcome.usage:
            batch.usage_error = outcome.message

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
                if records.is_complete(candidate.record) and (
                        not force or candidate.record.stat().st_mtime >= started):
                    batch.elsewhere.append(candidate)  # another runner did it meanwhile
                    locks.release(candidate)
                    bar.update()
                    continue
                for path in stale_temporaries(candidate.record):
                    path.unlink(missing_ok=True)
                pool.submit(candidate)
            for finished, outcome in pool.wait(0.5):
                take(finished, outcome)
        # Interrupted, or a usage error: no new jobs; those going finish (usage error) or are
        # interrupted (signal), and killed with their kernels if they do not stop in time.
        deadline = None
        while len(pool) and not stop["hard"]:
            if stop["signal"] and deadline is None:
                pool.interrupt()
                deadline = time.monotonic() + INTERRUPT_GRACE
            if deadline is not None and time.monotonic() > deadline:
                break
            for finished, outcome in pool.wait(0.5):
                take(finished, outcome)
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
    _print_summary(batch, len(jobs), command, stream)
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
        evidence = (f"  (executed notebook: {relative(failed.output)})" if failed.output.is_file()
                    else f"  (kernel log: {relative(log)})" if log.is_file() else "")
        print(f"  failed: {failed.name}: {message}{evidence}", file=stream)
    if batch.interrupted_by:
        name = signal.Signals(batch.interrupted_by).name
        print(f"interrupted by {name}: finished records are kept; run the same command again "
              f"to do the {len(batch.not_done)} missing runs: {command}", file=stream)
    elif batch.usage_error:
        print(f"stopped: {batch.usage_error}", file=stream)

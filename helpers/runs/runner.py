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
  (results/<experiment>/.seed-<k>.lock, flock: the OS drops it when the last process holding it
  ends, so no stale lock outlives a killed runner). The worker doing the run holds a copy of the
  lock, and a worker whose runner is gone kills its kernel and exits: a rerun never executes a
  run that a live orphan still does. A runner that finds a run locked does other runs first,
  then waits for the lock, saying which process holds it (and whether it is suspended), and
  finds the record done (or does the run itself if the other runner failed it). Runners with
  other parameters never share an experiment folder: each claims the folders it writes
  (`claims`), and a record another process finished meanwhile is checked like one found at the
  start.
- Ctrl-C / SIGTERM / SIGHUP: the workers interrupt their kernels (SIGINT, so the notebook's
  atomic write cleans its temporary file), then stop; finished records stay; the rerun does the
  rest. Exit codes: 0 all done, 1 some runs failed, 2 usage error, 130 SIGINT, 143 SIGTERM,
  129 SIGHUP. A run whose record was written counts as done, even if its executed notebook
  could not be saved after (a warning says so): the rerun would skip it too.

Where the jobs execute is `pools`: `LocalPool`, or `DaskPool` for `--scheduler`; any object
with the same methods can take their place (`run_batch(..., pool=...)`).
"""

import fcntl
import os
import re
import shlex
import signal
import stat
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from .. import catalogue
from ..errors import UsageError
from ..files import NOTEBOOKS, check_writable, relative, stale_temporaries
from ..science import mnist
from . import claims, pools, records

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
MAX_SEED = 2 ** 64 - 1    # what torch.manual_seed takes
MAX_SEEDS = 10_000        # runs per experiment in one batch: more is a typo, not a plan


def parse_seeds(text):
    """'0-9' | '0,3,5' | '0-2,7' -> sorted list of distinct seeds; UsageError if malformed,
    above MAX_SEED, or more than MAX_SEEDS (counted before any list is made)."""
    ranges = []
    for part in str(text).replace(" ", "").split(","):
        if not _SEEDS.match(part):
            raise UsageError(f"malformed seed list {text!r}: write seeds like 0-9, 0,3,5 or 0-2,7")
        first, _, last = part.partition("-")
        first, last = int(first), int(last or first)
        if last < first:
            raise UsageError(f"malformed seed list {text!r}: the range {part} runs backwards, "
                             f"write {last}-{first}")
        if last > MAX_SEED:
            raise UsageError(f"seed {last} is too large: seeds go from 0 to {MAX_SEED} "
                             f"(2**64 - 1)")
        ranges.append((first, last))
    count, reached = 0, -1  # distinct seeds of the sorted, possibly overlapping ranges
    for first, last in sorted(ranges):
        count += max(0, last - max(first, reached + 1) + 1)
        reached = max(reached, last)
    if count > MAX_SEEDS:
        raise UsageError(f"--seeds {text} asks for {count:,} runs of each experiment: at most "
                         f"{MAX_SEEDS:,} in one batch; run the seeds in parts")
    return sorted({seed for first, last in ranges for seed in range(first, last + 1)})


def notebook_path(path, notebooks_dir):
    """`path` as the kernel (cwd = notebooks folder) should see it: relative when inside the
    project (no absolute machine path lands in a notebook), else absolute."""
    path, notebooks_dir = Path(path).resolve(), Path(notebooks_dir).resolve()
    project = notebooks_dir.parent
    if path == project or project in path.parents:
        return os.path.relpath(path, notebooks_dir)
    return str(path)


def lock_path(record):
    """The per-run lock file beside a record: results/<experiment>/.seed-<k>.lock."""
    return record.parent / f".{record.stem}.lock"


def _unusable_lock(path, error):
    return UsageError(f"lock file {relative(path)} cannot be opened ({error.strerror}): its "
                      f"owner can remove it (it holds no data), or choose another folder with "
                      f"--results")


def _check_paths(places):
    """UsageError for a FIFO, folder or device where a run writes a file (a record read from a
    FIFO, or a log written into one, would wait forever), or a lock file this user cannot open
    (another user's, private). `places`: (record, executed notebook) of each run."""
    for record, output in places:
        for path in (record, output, output.with_suffix(".log")):
            try:
                mode = path.stat().st_mode
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(mode):
                raise UsageError(f"{relative(path)} is not a regular file "
                                 f"({records.file_kind(mode)}): move it away")
        try:
            os.close(os.open(lock_path(record), os.O_RDONLY))
        except FileNotFoundError:
            pass
        except OSError as error:
            raise _unusable_lock(lock_path(record), error) from None


def plan(names, seeds="0-9", overrides=None, results_dir="results", runs_dir="runs",
         notebooks_dir=None, force=False):
    """Every Job asked for, after checking all of the input; raises UsageError on bad input."""
    notebooks_dir = Path(notebooks_dir or NOTEBOOKS).resolve()
    names = catalogue.expand(names)
    if isinstance(seeds, str):
        seeds = parse_seeds(seeds)
    elif not seeds or any(not isinstance(s, int) or isinstance(s, bool) or not 0 <= s <= MAX_SEED
                          for s in seeds) or len(set(seeds)) > MAX_SEEDS:
        raise UsageError(f"seeds must be up to {MAX_SEEDS:,} integers from 0 to {MAX_SEED}, "
                         f"got {seeds!r}: write them like 0-9")
    seeds = sorted(set(seeds))
    overrides = dict(overrides or {})
    for name in ("experiment", "seed"):
        if name in overrides:
            raise UsageError(f"-p {name} is not allowed here: name experiments as arguments "
                             f"and seeds with --seeds")
    checked, splits = {}, {True}  # every run trains on MNIST training images
    for name in names:
        params = catalogue.resolve(name, seed=seeds[-1], **overrides)
        checked[name] = {key: params[key] for key in overrides}  # converted types
        data_root = params["data_root"]  # None for "none" or ""
        if params["evaluate_on"] == "test":
            splits.add(False)
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
            if (Path(folder) / name).is_dir():  # another user's, say
                check_writable(Path(folder) / name, what, option)
    results_dir, runs_dir = Path(results_dir).resolve(), Path(runs_dir).resolve()
    places = {(name, seed): (records.record_path(results_dir, name, seed),
                             runs_dir / name / f"seed-{seed}.ipynb")
              for name in names for seed in seeds}
    _check_paths(places.values())
    environment = {}
    # DataError (a UsageError) now, rather than in every run, when MNIST is missing or damaged;
    # files missing under the default data/ are downloaded here, once.
    root = mnist.ensure_data_root(data_root, sorted(splits, reverse=True))
    # The kernel runs in the notebooks folder: a relative MNIST_ROOT would point elsewhere.
    if os.environ.get("MNIST_ROOT"):
        environment["MNIST_ROOT"] = str(root)
    for name in names:
        if "data_root" in overrides:
            checked[name]["data_root"] = notebook_path(root, notebooks_dir)
        if force:  # the notebook then replaces a record made with other parameters
            checked[name]["replace"] = True
    return [Job(experiment=name, seed=seed,
                notebook=notebooks_dir / catalogue.get(name)["notebook"],
                output=places[name, seed][1], record=places[name, seed][0],
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
    warnings: list = field(default_factory=list)      # (job, message): done, but not all well
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
    records.check_same_parameters(
        job.record, catalogue.resolve(job.experiment, seed=job.seed, **(overrides or {})),
        fix="write these runs elsewhere with --results DIR, or replace the records with --force")


def _claim(jobs, overrides, command):
    """Claim the experiment folders of `jobs` for these parameters -> the claim files; UsageError
    when another live runner claims one for other parameters (see `claims`)."""
    paths = []
    try:
        for name, folder in {job.experiment: job.record.parent for job in jobs}.items():
            asked = {key: value for key, value in
                     catalogue.resolve(name, **(overrides or {})).items() if key != "seed"}
            paths.append(claims.write(folder, asked, command))
            for other in claims.others(folder):
                differ = records.parameter_differences(other["params"], asked)
                if differ:
                    who = (claims.describe(other["pid"]) if other.get("host") == claims.HOST
                           else f"pid {other['pid']} on {other.get('host')} "
                                f"({other.get('command')})")
                    raise UsageError(
                        f"another runner is writing {relative(folder)} with other parameters "
                        f"({'; '.join(differ[:3])}): {who}; "
                        f"let it finish, or write these runs elsewhere with --results DIR "
                        f"(its claim: {relative(other['path'])})")
    except BaseException:
        for path in paths:
            claims.remove(path)
        raise
    return paths


class _Locks:
    """Per-run lock files beside the records, so two runners never do one run at once.

    flock (stdlib fcntl) on the file opened read-only, so that a lock file another user made
    still locks. The lock belongs to the open file, not the process: the runner hands a copy
    of it to the worker doing the run (`pools.LocalPool.submit`), so it stays held while any
    process of the run lives, even one orphaned by a killed runner, and goes when they are all
    gone; the OS drops it then, so no stale lock outlives them.
    """

    def __init__(self):
        self._held = {}  # job -> file descriptor

    def try_acquire(self, job):
        path = lock_path(job.record)
        try:
            job.record.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
        except OSError as error:
            raise _unusable_lock(path, error) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._held[job] = fd
        return True

    def fd(self, job):
        return self._held[job]

    def release(self, job):
        # A killed write leaves a temporary file; nobody else writes this record while we hold it.
        for path in stale_temporaries(job.record):
            path.unlink(missing_ok=True)
        os.close(self._held.pop(job))

    def release_all(self):
        for job in list(self._held):
            self.release(job)


class _WaitNotice:
    """Says, once and then every `every` seconds, which runs the batch waits for and which
    processes hold their locks (pid, command, whether suspended): no silent wait."""

    def __init__(self, write, every=30.0):
        self._write, self._every, self._next = write, every, 0.0

    def __call__(self, jobs):
        if time.monotonic() < self._next:
            return
        self._next = time.monotonic() + self._every
        holders = claims.lock_holders([lock_path(job.record) for job in jobs])
        by_holder = {}
        for job in jobs:
            for pid in holders[lock_path(job.record)] or [None]:
                by_holder.setdefault(pid, []).append(job.name)
        for pid, names in by_holder.items():
            who = claims.describe(pid) if pid else "a process this user cannot see"
            self._write(f"waiting for {', '.join(names[:5])}{' ...' * (len(names) > 5)}: "
                        f"locked by {who}")


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
    jobs = plan(experiments, seeds, overrides, results_dir, runs_dir, notebooks_dir, force)
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
    claimed = _claim(list(todo), overrides, command)  # removed in the `finally` below
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
        if outcome.warning:
            batch.warnings.append((job, outcome.warning))
            bar.write(f"warning: {job.name}: {outcome.warning}", file=stream)
        if outcome.status == "done":
            batch.done.append(job)
            return
        batch.failed.append((job, outcome.message))
        bar.set_postfix_str(f"failed {len(batch.failed)}")
        bar.write(f"failed: {job.name}: {outcome.message}", file=stream)
        if outcome.usage:
            batch.usage_error = outcome.message

    def start(candidate):
        """Start `candidate`, whose lock is held: unless another runner did it meanwhile."""
        if records.is_complete(candidate.record) and (
                not force or candidate.record.stat().st_mtime >= started):
            locks.release(candidate)
            if not force:  # done elsewhere: with what was asked? (a runner without claims)
                try:
                    _check_same_parameters(candidate, overrides)
                except UsageError as error:
                    batch.usage_error = str(error)
                    batch.not_done.append(candidate)
                    return
            batch.elsewhere.append(candidate)
            bar.update()
            return
        for path in stale_temporaries(candidate.record):
            path.unlink(missing_ok=True)
        pool.submit(candidate, lock=locks.fd(candidate))

    # SIGHUP (the terminal closed) stops the batch like SIGTERM: no run goes on unwatched.
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM,
                                                         signal.SIGHUP)}
    bar = tqdm(total=len(todo), desc="runs", unit="run", file=stream, smoothing=0.1,
               mininterval=0.5, dynamic_ncols=True)
    bar.set_postfix_str("failed 0")
    notice = _WaitNotice(lambda line: bar.write(line, file=stream))
    try:
        while (todo or waiting or len(pool)) and not stop["signal"] and not batch.usage_error:
            candidates = list(todo) + waiting
            todo.clear()
            waiting = []
            for candidate in candidates:
                if batch.usage_error or len(pool) >= workers:
                    todo.append(candidate)
                    continue
                try:
                    acquired = locks.try_acquire(candidate)
                except UsageError as error:  # a lock file made meanwhile by another user
                    batch.usage_error = str(error)
                    todo.append(candidate)
                    continue
                if acquired:
                    start(candidate)
                else:
                    waiting.append(candidate)
            if waiting and not todo and not len(pool):
                notice(waiting)  # nothing to do but wait for other processes: say so
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
        for path in claimed:
            claims.remove(path)
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

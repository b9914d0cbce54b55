"""The batch runner behind `python -m helpers run`.

A run is one (experiment, seed) of the catalogue, its parameters resolved and checked once, by
the catalogue (`catalogue.resolve`). The runner executes it as a `Job`: the experiment's
notebook executed by papermill in a worker's warm kernel, with the experiment, the seed and
the parameters given on the command line. The notebook writes its record beside its executed
notebook in the runs folder (runs/<experiment>/seed-<k>.json, .ipynb and, locally, .log); the
runner, the only writer of a records folder while it runs, checks that record and publishes it
(results/<experiment>/seed-<k>.json, atomically).

What holds by construction:
- everything asked is checked before anything starts (`plan`): a one-line UsageError, exit 2;
- each records folder is locked for the whole batch (`files.lock_folder`): a second runner
  waits, saying for whom, and a notebook's `notebook.save` refuses to write there meanwhile;
  what to skip is decided under the lock, after the wait;
- a record is published only if it holds the job's own parameters and seed; the project's
  records folders take only the catalogue's own runs (`records.check_admitted`), so a record
  left in a runs folder by anything else (a run of other parameters, a Dask task that ran on
  after Ctrl-C) never counts;
- workers die with the runner and kernels with their worker; a stop signal kills them at
  once, and their runs are "not done": the same command does them;
- a run is "done" only when its record is published: anything else ends with a non-zero exit
  code (0 all done, 1 a run failed or was not done, 2 usage error, 128+N signal N);
- nothing written to stderr can fail the batch (a closed pipe is ignored).
"""

import os
import shlex
import signal
import sys
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from .. import catalogue
from ..errors import UsageError
from ..files import NOTEBOOKS, RESULTS, RUNS, VALIDATION, check_writable, lock_folder, \
    relative, stale_temporaries
from ..science import mnist
from . import records
from .pools import STOP_SIGNALS, LocalPool
from .records import parse_seeds

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


@dataclass(frozen=True, eq=False)  # identity: a job is a dict key
class Job:
    """One run and everything a worker needs to execute its notebook."""

    params: dict        # complete and checked: catalogue.resolve's
    notebook: Path      # the experiment's notebook
    cwd: Path           # the kernel's working directory: the notebooks folder
    output: Path        # the executed notebook: runs/<experiment>/seed-<k>.ipynb
    results: Path       # the records folder it is published in
    parameters: dict    # what papermill injects
    environment: dict = field(default_factory=dict)  # set in its kernel

    experiment = property(lambda self: self.params["experiment"])
    seed = property(lambda self: self.params["seed"])
    name = property(lambda self: f"{self.experiment} seed {self.seed}")
    record = property(lambda self: records.record_path(self.results, self.experiment, self.seed))
    staged = property(lambda self: self.output.with_suffix(".json"))  # where its notebook saves
    log = property(lambda self: self.output.with_suffix(".log"))


def notebook_path(path, notebooks_dir):
    """`path` as the kernel (cwd = notebooks folder) should see it: relative when inside the
    project (no absolute machine path lands in a notebook), else absolute."""
    path, notebooks_dir = Path(path).resolve(), Path(notebooks_dir).resolve()
    project = notebooks_dir.parent
    if path == project or project in path.parents:
        return os.path.relpath(path, notebooks_dir)
    return str(path)


def plan(names, seeds=None, overrides=None, results_dir=None, runs_dir=RUNS,
         notebooks_dir=None):
    """Every Job asked for, after checking all of the input; raises UsageError on bad input.
    `seeds` None: each row's own; `results_dir` None: each row's records folder (validation/
    for the rows measured on validation pairs, else results/)."""
    notebooks_dir, runs_dir = Path(notebooks_dir or NOTEBOOKS).resolve(), Path(runs_dir)
    overrides = dict(overrides or {})
    for name in ("experiment", "seed"):
        if name in overrides:
            raise UsageError(f"-p {name} is not allowed here: name experiments as arguments "
                             f"and seeds with --seeds")
    asked = []
    for name in catalogue.expand(names):
        notebook = notebooks_dir / catalogue.get(name)["notebook"]
        if not notebook.is_file():
            raise UsageError(f"notebook {notebook} of experiment {name} is missing: restore it "
                             f"(git checkout notebooks) or choose another notebooks folder")
        for seed in parse_seeds(seeds if seeds is not None else catalogue.get(name)["seeds"]):
            params = catalogue.resolve(name, seed=seed, **overrides)
            results = Path(results_dir or (VALIDATION if params["evaluate_on"] == "validation"
                                           else RESULTS))
            records.check_admitted(params, results, "write these runs elsewhere with --results DIR")
            asked.append((params, notebook, results))
    folders = {results: "--results" for _, _, results in asked} | {runs_dir: "--runs"}
    for folder, option in folders.items():
        check_writable(folder, option[2:], option)
        for name in {params["experiment"] for params, _, _ in asked}:
            if (folder / name).exists() and not (folder / name).is_dir():
                raise UsageError(f"{folder / name} is a file, where the {option[2:]} of {name} "
                                 f"go: move it away, or choose another folder with {option}")
            if (folder / name).is_dir():  # another user's, say
                check_writable(folder / name, option[2:], option)
    for params, _, results in asked:  # a FIFO would be waited on, a folder never replaced
        path = records.record_path(results, params["experiment"], params["seed"])
        if path.exists() and not path.is_file():
            raise UsageError(f"{relative(path)} is not a regular file "
                             f"({records.file_kind(path.stat().st_mode)}): move it away")
    # DataError (a UsageError) now, rather than in every run, when MNIST is missing or damaged;
    # files missing under the default data/ are downloaded here, once.
    root = mnist.ensure_data_root(asked[0][0]["data_root"], sorted(
        {True} | {False for params, _, _ in asked if params["evaluate_on"] == "test"}, reverse=True))
    # The kernel runs in the notebooks folder: a relative MNIST_ROOT would point elsewhere.
    environment = {"MNIST_ROOT": str(root)} if os.environ.get("MNIST_ROOT") else {}

    def injected(params):  # the catalogue makes the same parameters of these in the kernel
        given = {name: params[name] for name in overrides}
        if "data_root" in overrides:
            given["data_root"] = notebook_path(root, notebooks_dir)
        return {"experiment": params["experiment"], "seed": params["seed"], **given,
                "results_dir": notebook_path(runs_dir, notebooks_dir)}

    return [Job(params, notebook, notebooks_dir, runs_dir.resolve() / params["experiment"] /
                f"seed-{params['seed']}.ipynb", results.resolve(), injected(params), environment)
            for params, notebook, results in asked]


@dataclass
class BatchResult:
    total: int = 0
    done: list = field(default_factory=list)          # records published by this batch
    skipped: list = field(default_factory=list)       # valid record already there
    failed: list = field(default_factory=list)        # (job, message)
    not_done: list = field(default_factory=list)      # interrupted or stopped: for the rerun
    usage_error: str = ""                             # a run failed with a UsageError
    interrupted_by: int = 0                           # the signal that stopped the batch

    @property
    def exit_code(self):
        if self.interrupted_by:
            return 128 + self.interrupted_by
        if self.usage_error:
            return EXIT_USAGE
        return EXIT_FAILED if self.failed or self.not_done else EXIT_OK


class _Output:
    """The runner's stderr, where a write to a closed pipe (`... 2>&1 | head`) fails nothing."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        try:
            self._stream.write(text)
            self._stream.flush()
        except (OSError, ValueError):
            pass
        return len(text)

    def flush(self):
        pass

    def line(self, text):
        self.write(text + "\n")


def _publish(job, record):
    """Write `record` as `job`'s, if it is `job`'s; else raise DamagedRecord."""
    differ = records.parameter_differences(record["params"], job.params)
    if differ:
        raise records.DamagedRecord(f"its record is another run's ({'; '.join(differ[:3])}): "
                                    f"something else wrote {relative(job.staged)} meanwhile")
    try:
        records.write_record(record, job.results)
    except UsageError as error:
        raise records.DamagedRecord(f"{error} (its record stays in {relative(job.staged)}: the "
                                    f"same command publishes it then)") from None


def _sort_out(jobs, force, batch, out):
    """The jobs to execute, decided under the locks. A job whose valid record is there with
    its parameters is skipped (unless `force`); one whose record its runs folder holds (done,
    but the records folder was unwritable, or the batch stopped) is published from there.
    UsageError for a record made with other parameters or by a newer version."""
    found = {folder: records.load(folder) for folder in {job.results for job in jobs}}
    valid = {(r["experiment"], r["seed"], f): r for f in found for r in found[f].records}
    todo = []
    for job in jobs:
        for path in stale_temporaries(job.record):  # a killed write's; no one else writes now
            path.unlink(missing_ok=True)
        record = valid.get((job.experiment, job.seed, job.results))
        try:
            if record is None and job.record.exists():
                records.read_record(job.record)  # raises why, unless it copies another seed's
            elif record is not None and not force:
                differ = records.parameter_differences(record["params"], job.params)
                if differ:
                    raise UsageError(f"{relative(job.record)} was made with other parameters "
                                     f"({'; '.join(differ[:3])}): write these runs elsewhere "
                                     f"with --results DIR, or replace the records with --force")
                records.check_against_pairs(record, job.params["data_root"])
                batch.skipped.append(job)
                continue
        except records.NewerRecord as why:
            if not force:
                raise UsageError(f"{relative(job.record)} was made by a newer version ({why}): "
                                 f"update helpers, write these runs elsewhere with --results "
                                 f"DIR, or replace it with --force") from None
        except records.DamagedRecord:
            pass
        try:
            if not force:
                staged = records.read_record(job.staged)
                records.check_against_pairs(staged, job.params["data_root"])
                _publish(job, staged)
                out.line(f"{job.name}: its record in {relative(job.staged)} is published")
                batch.done.append(job)
                continue
        except records.DamagedRecord:
            pass
        todo.append(job)
    if batch.skipped:
        out.line(f"skipping {len(batch.skipped)} of {len(jobs)} runs: their records are "
                 f"already there (--force redoes them)")
    return todo


def run_batch(experiments=("all",), seeds=None, workers=None, results_dir=None, runs_dir=RUNS,
              force=False, overrides=None, notebooks_dir=None, command=None, rerun_options=(),
              pool=None, stream=None):
    """Execute every (experiment, seed) asked for that has no valid record yet; -> BatchResult.

    Raises UsageError, before anything starts, for any bad input. `command` is what the user
    typed, for the resume message (`rerun_options`: its options but the experiments, --seeds
    and --force); `pool` replaces the local worker processes (a DaskPool, say).
    """
    out = _Output(stream or sys.stderr)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise UsageError(f"--workers must be an integer >= 1, got {workers!r}")
    jobs = plan([experiments] if isinstance(experiments, str) else experiments, seeds,
                overrides, results_dir, runs_dir, notebooks_dir)
    command = command or "python -m helpers " + shlex.join(sys.argv[1:])
    batch = BatchResult(total=len(jobs))
    locks = []
    try:
        for folder in sorted({job.results for job in jobs}):
            locks.append(lock_folder(folder, "write these runs elsewhere with --results DIR",
                                     lambda who, f=folder: out.line(
                                         f"waiting for {relative(f)}/: locked by {who}")))
        todo = _sort_out(jobs, force, batch, out)
        if todo:
            _execute(todo, workers, LocalPool() if pool is None else pool, batch, out,
                     own_pool=pool is None)
    finally:
        for fd in locks:
            os.close(fd)
    _print_summary(batch, command, rerun_options, force, out)
    return batch


def _execute(todo, workers, pool, batch, out, own_pool):
    """Keep up to `workers` jobs of `todo` going in `pool`, publishing each record, until all
    ended, a run failed with a usage error (no new run starts) or a stop signal came."""
    from tqdm import tqdm

    tqdm.monitor_interval = 0  # no monitor thread: workers are forked from this process
    queue, stop = deque(todo), []
    workers = min(workers or pool.capacity(), len(todo))
    previous = {s: signal.signal(s, lambda signum, frame: stop.append(signum)) for s in STOP_SIGNALS}
    bar = tqdm(total=len(todo), desc="runs", unit="run", file=out, smoothing=0.1,
               mininterval=0.5, dynamic_ncols=True, postfix="failed 0")
    try:
        while (queue or len(pool)) and not stop:
            while queue and len(pool) < workers and not batch.usage_error:
                pool.submit(queue.popleft())
            if not len(pool):
                break
            for job, outcome in pool.wait(0.5):
                bar.update()
                try:
                    if outcome.record is None:
                        raise records.DamagedRecord(outcome.message)
                    _publish(job, outcome.record)
                    batch.done.append(job)
                    if outcome.message:
                        bar.write(f"warning: {job.name}: its record was written, then the run "
                                  f"failed ({outcome.message}): the record is kept, the "
                                  f"executed notebook may be missing", file=out)
                except records.DamagedRecord as why:
                    batch.failed.append((job, str(why)))
                    if outcome.usage and not batch.usage_error:
                        batch.usage_error = str(why)
                    bar.set_postfix_str(f"failed {len(batch.failed)}")
                    bar.write(f"failed: {job.name}: {why}", file=out)
            for line in pool.notices():
                bar.write(line, file=out)
        batch.not_done += (pool.stop() if stop else []) + list(queue)
    finally:
        if own_pool:
            pool.close()
        bar.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    batch.interrupted_by = stop[0] if stop else 0


def seed_list(seeds):
    """[0, 1, 2, 5] -> '0-2,5' (what --seeds takes)."""
    parts, seeds = [], sorted(seeds)
    for seed in seeds:
        if parts and seed == parts[-1][1] + 1:
            parts[-1][1] = seed
        else:
            parts.append([seed, seed])
    return ",".join(f"{a}-{b}" if b > a else f"{a}" for a, b in parts)


def _print_summary(batch, command, rerun_options, force, out):
    parts = [f"{len(batch.done)} done"]
    if batch.skipped:
        parts.append(f"{len(batch.skipped)} skipped (record already there)")
    if batch.failed:
        parts.append(f"{len(batch.failed)} failed")
    if batch.not_done:
        parts.append(f"{len(batch.not_done)} not done")
    out.line(f"{batch.total} run{'s' * (batch.total != 1)}: {', '.join(parts)}")
    for failed, message in batch.failed:
        # no executed notebook when the kernel died or never started: its log says why
        evidence = (f"  (executed notebook: {relative(failed.output)})" if failed.output.is_file()
                    else f"  (kernel log: {relative(failed.log)})" if failed.log.is_file() else "")
        out.line(f"  failed: {failed.name}: {message}{evidence}")
    if batch.usage_error:
        out.line(f"stopped: {batch.usage_error}")
    elif batch.not_done:
        if force:  # the same command would redo the runs done meanwhile too
            by_seeds = {}
            for job in batch.not_done:
                by_seeds.setdefault(job.experiment, set()).add(job.seed)
            names = {}
            for name, seeds in by_seeds.items():
                names.setdefault(seed_list(seeds), []).append(name)
            command = "; ".join(shlex.join(["python", "-m", "helpers", "run", *group, "--seeds",
                                            seeds, *rerun_options, "--force"])
                                for seeds, group in names.items())
        why = (f"interrupted by {signal.Signals(batch.interrupted_by).name}"
               if batch.interrupted_by else "not done")
        out.line(f"{why}: finished records are kept; run {'this' if force else 'the same'} "
                 f"command again to do the {len(batch.not_done)} missing runs: {command}")

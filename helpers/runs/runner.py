"""The runner behind `python -m helpers run` (docs/running.md): a `Job`'s notebook saves its
record in the runs folder; the runner, holding the records folder's lock, publishes it."""

import contextlib
import os
import signal
import sys
from collections import deque
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path

from .. import catalogue

from ..catalogue.seeds import parse_seeds
from ..errors import UsageError, diverged_at
from ..files import NOTEBOOKS, RESULTS, RUNS, VALIDATION, Output, check_writable, lock_folder, \
    notebook_path, relative, stale_temporaries
from ..science import PROGRESS_VARIABLE, mnist
from . import execution, records

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
ELSEWHERE = "write these runs elsewhere with --results DIR"


@dataclass(frozen=True, eq=False)
class Job:
    params: dict        # complete and checked: catalogue.resolve's
    notebook: Path
    cwd: Path           # the kernel's working folder: the notebooks folder
    output: Path        # the executed notebook: <its staging>/<experiment>/seed-<k>.ipynb
    results: Path       # the records folder it is published in
    parameters: dict    # what papermill injects
    environment: dict   # set in its kernel

    experiment = property(lambda self: self.params["experiment"])
    seed = property(lambda self: self.params["seed"])
    name = property(lambda self: f"{self.experiment} seed {self.seed}")
    record = property(lambda self: records.record_path(self.results, self.experiment, self.seed))
    staged = property(lambda self: self.output.with_suffix(".json"))  # where its notebook saves
    log = property(lambda self: self.output.with_suffix(".log"))


def plan(names, seeds=None, overrides=None, results_dir=None, runs_dir=RUNS, notebooks_dir=None):
    """Every Job asked for, all input checked (UsageError). `seeds` None: each row's own;
    `results_dir` None: each row's folder (validation/ for validation rows, else results/)."""
    notebooks_dir, runs_dir = Path(notebooks_dir or NOTEBOOKS).resolve(), Path(runs_dir)
    overrides, asked = dict(overrides or {}), []
    for name in catalogue.expand(names):
        notebook = notebooks_dir / catalogue.get(name)["notebook"]
        if not notebook.is_file():
            raise UsageError(f"notebook {notebook} of experiment {name} is missing: restore it "
                             f"(git checkout notebooks) or choose another notebooks folder")
        for seed in parse_seeds(catalogue.get(name)["seeds"] if seeds is None else seeds):
            params = catalogue.resolve(name, seed=seed, **overrides)
            results = Path(results_dir or (VALIDATION if params["evaluate_on"] == "validation"
                                           else RESULTS))
            records.check_own_run(params, results, ELSEWHERE)
            asked.append((params, notebook, results))
    for folder, option in ({r: "--results" for _, _, r in asked} | {runs_dir: "--runs"}).items():
        for path in [folder, *{folder / params["experiment"] for params, _, _ in asked}]:
            check_writable(path, option[2:], option)  # (an experiment's: another user's, say)
    runs = runs_dir.resolve()
    for folder in {RESULTS.resolve(), VALIDATION.resolve(), *(r.resolve() for _, _, r in asked)}:
        if folder == runs or folder in runs.parents or runs in folder.parents:
            raise UsageError(f"--runs {relative(runs_dir)} and the records folder "
                             f"{relative(folder)} overlap: give them folders apart")
    # MNIST checked (DataError) once, here; files missing under the default data/ downloaded
    root = mnist.ensure_data_root(asked[0][0]["data_root"], [True] + (
        [False] if any(params["evaluate_on"] == "test" for params, _, _ in asked) else []))
    given = {name: notebook_path(root, notebooks_dir) for name in overrides if name == "data_root"}
    return [Job(params, notebook, notebooks_dir, staging(runs_dir, results) / params["experiment"]
                / f"seed-{params['seed']}.ipynb", results.resolve(),
                {"experiment": params["experiment"], "seed": params["seed"],
                 **{name: params[name] for name in overrides}, **given,
                 "results_dir": notebook_path(staging(runs_dir, results), notebooks_dir)},
                {"MNIST_ROOT": str(root)} if os.environ.get("MNIST_ROOT") else {})
            for params, notebook, results in asked]


def staging(runs_dir, results):
    """Where the runs for the records folder `results` stage: a folder of their own under
    `runs_dir` (one batch at a time holds that records folder, hence it)."""
    results = Path(results).resolve()
    return Path(runs_dir).resolve() / f"{results.name}-{sha256(bytes(results)).hexdigest()[:8]}"


@dataclass
class BatchResult:
    total: int = 0
    done: list = field(default_factory=list)      # published by this batch
    diverged: list = field(default_factory=list)  # of those, trainings that diverged
    skipped: list = field(default_factory=list)   # their valid record already there
    failed: list = field(default_factory=list)    # (job, the line that says why)
    not_done: list = field(default_factory=list)  # stopped: for the rerun
    usage_error: str = ""                         # a run failed with a UsageError: stopped
    interrupted_by: int = 0                       # the signal that stopped the batch

    @property
    def exit_code(self):
        return (128 + self.interrupted_by if self.interrupted_by else EXIT_USAGE if
                self.usage_error else EXIT_FAILED if self.failed or self.not_done else EXIT_OK)


def _sort_out(jobs, force, batch, out):
    """The jobs to execute, each with what its record's place holds (`records.identity`),
    decided under the locks: those whose valid record is there are skipped, unless `force`;
    UsageError for a record another run made, or one not to replace unasked."""
    found = {folder: records.load(folder, {job.experiment for job in jobs}, jobs[0].params[
        "data_root"]) for folder in {job.results for job in jobs}}
    valid = {(r["experiment"], r["seed"], f): r for f in found
             for r in found[f].records + found[f].diverged}  # (diverging is an outcome)
    todo = {}
    for job in jobs:
        for path in stale_temporaries(job.record):  # a killed write's; no one else writes now
            path.unlink(missing_ok=True)
        record = valid.get((job.experiment, job.seed, job.results))
        try:
            if record is None or force:
                if job.record.exists() and not force:
                    records.read_record(job.record)  # KeptRecord: a newer version's, say
                todo[job] = records.identity(job.record)
                continue
            differ = records.parameter_differences(record["params"], job.params)
            if differ:
                raise UsageError(f"{relative(job.record)} was made with other parameters "
                                 f"({'; '.join(differ[:3])}): {ELSEWHERE}, or replace the "
                                 f"records with --force")
            batch.skipped.append(job)
        except records.KeptRecord as why:
            raise UsageError(f"{relative(job.record)} {why}, {ELSEWHERE}, or replace it with "
                             f"--force") from None
        except records.DamagedRecord:  # (its predictions on its pairs say otherwise)
            todo[job] = records.identity(job.record)
    if batch.skipped:
        out.write(f"skipping {len(batch.skipped)} of {len(jobs)} runs: their records are "
                  f"already there (--force redoes them)\n")
    return todo


def run_batch(experiments=("all",), seeds=None, workers=None, results_dir=None, runs_dir=RUNS,
              force=False, overrides=None, notebooks_dir=None, scheduler=None, stream=None):
    """Execute each (experiment, seed) asked for without a valid record -> BatchResult (bad
    input: UsageError first); on the Dask cluster at `scheduler`, else in threads here."""
    out = stream if isinstance(stream, Output) else Output(stream or sys.stderr)
    jobs = plan([experiments] if isinstance(experiments, str) else experiments, seeds,
                overrides, results_dir, runs_dir, notebooks_dir)
    client = execution.connect(scheduler) if scheduler else None  # (refused before anything)
    batch, locks, stop, previous = BatchResult(total=len(jobs)), {}, [], {}
    try:  # (Ctrl-C while it waits for a lock: KeyboardInterrupt, nothing started)
        for folder in sorted({job.results for job in jobs}):
            locks[folder] = lock_folder(folder, ELSEWHERE, lambda who, f=folder: out.write(
                f"waiting for {relative(f)}/: locked by {who}\n"))
        previous = {s: signal.signal(s, lambda signum, _: stop.append(signum)) for s in STOP_SIGNALS}
        todo = _sort_out(jobs, force, batch, out)
        if todo:
            client = client or execution.connect(workers=min(workers or os.cpu_count(), len(todo)))
            _execute(todo, workers or sum(client.nthreads().values()), client, batch, out, stop,
                     locks)
    finally:
        for kernel in execution.KERNELS:  # those of this process: a batch leaves none running
            kernel.kill()
        execution.KERNELS.clear()
        if client is not None:
            with contextlib.suppress(Exception):  # (a cluster that is gone)
                client.close()
        for fd in locks.values():
            os.close(fd)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    batch.interrupted_by = stop[0] if stop else 0
    return batch


def _execute(todo, workers, client, batch, out, stop, locks):
    """Keep up to `workers` jobs going on `client`'s cluster, publishing each record (under
    `locks`, if its place holds what `todo` says), until all ended, a usage error stops new
    ones, or a signal comes into `stop` (those going end). A progress bar on a terminal only."""
    from tqdm import tqdm

    queue, going, said = deque(todo), {}, set()
    bar = tqdm(total=len(todo), desc="runs", unit="run", file=out, smoothing=0.1,
               mininterval=0.5, dynamic_ncols=True, postfix="failed 0",
               disable=not out.isatty() or os.environ.get(PROGRESS_VARIABLE) == "0")
    with bar:
        while (queue or going) and not stop:
            while queue and len(going) < workers and not batch.usage_error:
                job = queue.popleft()
                going[client.submit(execution.execute_here, job, pure=False, key=f"helpers-run-"
                                    f"{job.experiment}-seed-{job.seed}-{os.urandom(4).hex()}")] = job
            if not going:
                break
            for future, (record, failure) in execution.ended(going, timeout=0.5):
                job = going.pop(future)
                bar.update()
                try:  # published if it is this run's own
                    if record is None:
                        raise records.DamagedRecord(failure.message)
                    differ = records.parameter_differences(record["params"], job.params)
                    if differ:
                        raise records.DamagedRecord(
                            f"its record is another run's ({'; '.join(differ[:3])}): something "
                            f"else wrote {relative(job.staged)} meanwhile")
                    records.publish(record, job.results, locks[job.results], todo[job], ELSEWHERE)
                    batch.done.append(job)
                    if "diverged" in record:
                        batch.diverged.append(job)
                        bar.write(f"diverged: {job.name}: {diverged_at(record['diverged'])}: "
                                  f"recorded as its outcome; a lower lr may train", file=out)
                    if failure:
                        bar.write(f"warning: {job.name}: its record was written, then the run "
                                  f"failed ({failure.message}): the record is kept, the "
                                  f"executed notebook may be missing", file=out)
                except (records.DamagedRecord, UsageError) as why:  # (UsageError: unwritable)
                    why = f"{why} (its record stays in {relative(job.staged)})" if \
                        isinstance(why, UsageError) else why
                    batch.failed.append((job, str(why)))
                    if failure and failure.usage and not batch.usage_error:
                        batch.usage_error = str(why)
                    bar.set_postfix_str(f"failed {len(batch.failed)}")
                    bar.write(f"failed: {job.name}: {why}", file=out)
            for line in execution.suspended(said, client=client):
                bar.write(line, file=out)
    with contextlib.suppress(Exception):  # (a cluster that is gone: nothing left to cancel)
        client.cancel(list(going), force=True)
    batch.not_done += list(going.values()) + list(queue)

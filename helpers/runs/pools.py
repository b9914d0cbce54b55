"""Where the runs execute: one job executed (`execute`), and the pools that keep several going.

A pool is anything with `submit(job, lock=None)` (`lock`: the file descriptor of the run's
lock), `wait(timeout) -> [(job, Outcome)]`, `interrupt()` (ask the running jobs to stop),
`kill() -> [job]` (stop them now), `close()` (release everything), `capacity()` (jobs it runs at
once by default) and `len()` (jobs in flight); the runner drives one. Two are here:
- `LocalPool`: worker processes forked from the runner, each executing one job at a time in
  its warm kernel (`kernels.WarmKernel`: started once, its namespace reset before each job,
  restarted after a failed job), holding a copy of the job's lock while it runs, and killing
  its kernel and exiting as soon as the runner is gone (`_exit_with`);
- `DaskPool`: one task per job on an existing dask.distributed cluster (`--scheduler`).
"""

import logging
import multiprocessing
import multiprocessing.connection
import multiprocessing.reduction
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..errors import UsageError
from . import records
from .execution import NotebookFailed, execute_notebook, first_line


@dataclass
class Outcome:
    """How a job ended: status "done", "failed" or "interrupted"; `message` says why it failed;
    `usage` marks the user's mistake (the batch stops); `warning`: done, but not all went well."""
    status: str
    message: str = ""
    usage: bool = False
    seconds: Optional[float] = None
    warning: str = ""


# ---------------------------------------------------------------------------------------------
# Executing one job (in a worker process)
# ---------------------------------------------------------------------------------------------
_interrupted = False


def _interrupt_kernel(signum, frame):
    """Worker's SIGINT/SIGTERM handler: interrupt the kernel, so papermill stops with an error.

    SIGINT makes a KeyboardInterrupt in the running cell, so the notebook's cleanups run (the
    atomic record write removes its temporary file). A kernel that is starting or between two
    cells misses it, so it is sent again every second until the job ends.
    """
    global _interrupted
    if _interrupted:
        return
    _interrupted = True
    import threading

    import psutil

    def keep_interrupting():
        while True:
            for child in psutil.Process().children(recursive=True):
                try:
                    child.send_signal(signal.SIGINT)
                except psutil.Error:
                    pass
            time.sleep(1.0)

    threading.Thread(target=keep_interrupting, daemon=True).start()


def _identity(path):
    """(inode, mtime) of the file at `path`, or None: a record written anew changes it (the
    atomic write renames a new file over the old one)."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_ino, status.st_mtime_ns


def _remove_if_partial(path):
    """Remove the executed notebook at `path` if a failed save left it incomplete."""
    import json

    try:
        json.loads(Path(path).read_text())
    except FileNotFoundError:
        pass
    except (OSError, ValueError):
        Path(path).unlink(missing_ok=True)


def execute(job, kernel=None):
    """Execute `job` in `kernel` (a kernels.WarmKernel) or else a fresh kernel -> Outcome.
    Never raises."""
    started, before = time.monotonic(), _identity(job.record)
    try:
        job.output.parent.mkdir(parents=True, exist_ok=True)
        job.output.unlink(missing_ok=True)  # an earlier job's notebook must not pass for this one
        execute_notebook(job.notebook, job.output, job.parameters, job.cwd,
                         km=kernel.manager(job) if kernel else None, environment=job.environment)
        records.read_record(job.record)
        outcome = Outcome("done")
    except NotebookFailed as failure:
        outcome = Outcome("failed", failure.message, failure.usage)
    except records.DamagedRecord as why:
        outcome = Outcome("failed", f"the notebook finished without a valid record at "
                                    f"{job.record} ({why})")
    except Exception as error:  # the kernel could not be reset, a folder not made...
        outcome = Outcome("failed", f"{type(error).__name__}: {first_line(error)}")
    if kernel and outcome.status != "done":  # the next job gets a fresh kernel, not a broken one
        kernel.stop()
    if outcome.status == "failed" and _identity(job.record) not in (None, before) \
            and records.is_complete(job.record):
        # The notebook wrote its record, then failed (its executed notebook could not be saved
        # on a full disk, say): the run is done, as a rerun would find it.
        outcome = Outcome("done", warning=f"its record was written, then the run failed "
                                          f"({outcome.message}): the record is kept, the "
                                          f"executed notebook may be missing")
        _remove_if_partial(job.output)
    if _interrupted and outcome.status != "done":  # a job whose record got written is done
        outcome.status = "interrupted"
    outcome.seconds = time.monotonic() - started
    return outcome


def _log_to(path):
    """Send this process's stdout/stderr (and a kernel it starts) to `path`."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
    except OSError:
        pass


def _exit_with(runner):
    """Kill this worker's kernel and exit as soon as the runner (pid `runner`, our parent) is
    gone: killed by SIGKILL, it could not stop us, and a rerun would redo our run. Polling
    os.getppid() in a thread works wherever fork does; the kernel dies first, so the run's lock,
    which this process holds while it executes a run, outlives every process of the run."""
    import threading

    import psutil

    def watch():
        while os.getppid() == runner:
            time.sleep(0.2)
        family = psutil.Process().children(recursive=True)
        for process in family:
            try:
                process.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(family, timeout=5)
        os._exit(1)

    threading.Thread(target=watch, name="exit with the runner", daemon=True).start()


_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


def _worker(connection, runner, inherited):
    """A local worker: executes the jobs it receives, one at a time, in one warm kernel, until
    it receives None (or the pipe closes, or it is interrupted, or the runner is gone). Each job
    comes with a copy of its run's lock (a file descriptor), held until the job ends."""
    for fd in inherited:  # the runner's locks that fork copied: not this worker's to hold
        try:
            os.close(fd)
        except OSError:
            pass
    for signum in _STOP_SIGNALS:
        signal.signal(signum, _interrupt_kernel)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    _exit_with(runner)
    # The parameters were checked before the batch: papermill's warnings about parsing the
    # parameters cell are noise here. The kernel's own stdout/stderr (startup warnings, a crash)
    # go to runs/<experiment>/seed-<k>.log of the job that started it, not over the progress bar.
    logging.getLogger("papermill").setLevel(logging.ERROR)
    from .kernels import WarmKernel

    kernel = WarmKernel()
    try:
        while not _interrupted:
            try:
                message = connection.recv()
                if message is None:
                    break
                job, locked = message
                lock = multiprocessing.reduction.recv_handle(connection) if locked else None
            except (EOFError, OSError):
                break
            try:
                _log_to(job.output.with_suffix(".log"))
                # The first job, or the last one failed: the kernel boots and imports while
                # papermill is imported.
                if kernel.km is None:
                    kernel.start(job.cwd, job.environment)
                outcome = execute(job, kernel)
            finally:
                if lock is not None:
                    os.close(lock)
            connection.send(outcome)
    finally:
        kernel.stop()
        connection.close()


@dataclass(eq=False)
class _LocalWorker:
    process: multiprocessing.Process
    connection: multiprocessing.connection.Connection  # jobs go out, outcomes come back
    job: object = None  # the runner.Job it is doing; None when idle
    lock: Optional[int] = None  # the runner's file descriptor of that job's lock
    descendants: dict = field(default_factory=dict)  # pid -> psutil.Process (its kernel)


class LocalPool:
    """Jobs in worker processes on this machine, forked from the runner, each executing one job
    at a time in its warm kernel (`kernels.WarmKernel`).

    A worker killed by anyone (SIGKILL, out of memory) costs exactly the job it was doing,
    which is reported as failed; the next job starts a new worker. Each worker imports
    papermill itself, while its kernel starts. The pool remembers each worker's descendants
    (its kernel) to stop them too.
    """

    def __init__(self):
        import psutil

        self._psutil = psutil
        self._context = multiprocessing.get_context("fork")
        self._workers = []

    def __len__(self):  # jobs in flight
        return sum(worker.job is not None for worker in self._workers)

    def capacity(self):
        return os.cpu_count() or 1

    def submit(self, job, lock=None):
        """Start `job` in an idle worker (or a new one); `lock`, the file descriptor of the
        run's lock, is copied to the worker, which holds it while it does the job."""
        held = [w.lock for w in self._workers if w.lock is not None] + \
            ([lock] if lock is not None else [])
        worker = next((w for w in self._workers if w.job is None and w.process.is_alive()),
                      None) or self._start_worker(inherited=held)
        worker.connection.send((job, lock is not None))
        if lock is not None:
            multiprocessing.reduction.send_handle(worker.connection, lock, worker.process.pid)
        worker.job, worker.lock = job, lock

    def _start_worker(self, inherited):
        ours, theirs = self._context.Pipe()
        process = self._context.Process(target=_worker, args=(theirs, os.getpid(), inherited),
                                        daemon=True, name="helpers run worker")
        # Signals stay blocked until the worker has its own handlers (no window with ours).
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        theirs.close()
        worker = _LocalWorker(process, ours)
        self._workers.append(worker)
        return worker

    def _track_descendants(self):
        for worker in self._workers:
            try:
                for child in self._psutil.Process(worker.process.pid).children(recursive=True):
                    worker.descendants.setdefault(child.pid, child)
            except self._psutil.Error:
                pass

    def wait(self, timeout):
        """[(job, Outcome)] for the jobs that ended within `timeout` seconds."""
        if not len(self):
            time.sleep(timeout)
            return []
        self._track_descendants()
        multiprocessing.connection.wait(
            [w.connection for w in self._workers] + [w.process.sentinel for w in self._workers],
            timeout)
        finished = []
        for worker in list(self._workers):
            outcome = None
            try:
                if worker.connection.poll():
                    outcome = worker.connection.recv()
            except (EOFError, OSError):
                pass
            if outcome is not None:
                finished.append((worker.job, outcome))
                worker.job = worker.lock = None
            elif worker.job is not None and worker.process.is_alive():
                continue  # still running
            if worker.process.is_alive():
                continue  # idle, ready for the next job
            worker.process.join()  # it ended: idle after an interruption, or killed
            if worker.job is not None:
                code = worker.process.exitcode
                how = (f"killed by {signal.Signals(-code).name}" if code and code < 0
                       else f"exit code {code}")
                finished.append((worker.job, Outcome(
                    "failed", f"its worker process died ({how}) before reporting")))
            self._remove(worker)
        return finished

    def _remove(self, worker):
        self._workers.remove(worker)
        worker.connection.close()
        self._kill_all(worker.descendants.values())  # an orphaned kernel, if any

    def interrupt(self):
        """Ask every busy worker to stop (they interrupt their kernels)."""
        for worker in self._workers:
            if worker.job is not None and worker.process.is_alive():
                os.kill(worker.process.pid, signal.SIGTERM)

    def kill(self):
        """Kill every busy worker and its kernel now -> the jobs they were doing."""
        busy = [worker for worker in self._workers if worker.job is not None]
        self._kill_workers(busy)
        return [worker.job for worker in busy]

    def close(self, grace=10):
        """Stop the idle workers, which shut their kernels down; kill what is left after
        `grace` seconds."""
        self._track_descendants()
        for worker in self._workers:
            try:
                worker.connection.send(None)
            except OSError:
                pass
        deadline = time.monotonic() + grace
        for worker in self._workers:
            worker.process.join(max(0, deadline - time.monotonic()))
        self._kill_workers(list(self._workers))

    def _kill_workers(self, workers):
        self._track_descendants()
        for worker in workers:
            self._kill_all([self._psutil.Process(worker.process.pid)]
                           if worker.process.is_alive() else [])
            worker.process.join()
            self._remove(worker)

    def _kill_all(self, processes):
        processes = list(processes)
        for proc in processes:
            try:
                if proc.is_running():  # also checks the pid was not reused
                    proc.kill()
            except self._psutil.Error:
                pass
        self._psutil.wait_procs(processes, timeout=5)


def _execute_on_dask_worker(job):
    """`execute` in a Dask worker's task thread (the kernel's output goes to the worker's log)."""
    logging.getLogger("papermill").setLevel(logging.ERROR)
    return execute(job)


class DaskPool:
    """Jobs on an existing dask.distributed cluster (`--scheduler ADDRESS`): one task per job,
    executing the notebook with papermill on a worker in a fresh kernel per job (a local worker
    keeps one warm; keeping kernels warm on Dask workers is not done yet).

    The workers need this package installed, the same paths to the notebooks, results, runs
    and MNIST folders (a shared file system), and the `python3` kernel. Skipping, locking and
    the failure report stay in the runner. Dask cannot stop a task that is running:
    `interrupt`/`kill` cancel the jobs not started and stop waiting for the others.
    """

    def __init__(self, address, timeout=10):
        from distributed import Client

        try:
            self._client = Client(address, timeout=timeout)
        except Exception as error:  # unreachable, a malformed address, tls:// without keys
            # (TypeError)...: distributed raises many kinds, all the user's to fix
            raise UsageError(f"cannot reach the Dask scheduler at {address} ({type(error).__name__}"
                             f": {first_line(error)}): check the address, or start one with "
                             f"`dask scheduler` and `dask worker ADDRESS`") from None
        self._futures = {}  # future -> job

    def __len__(self):
        return len(self._futures)

    def capacity(self):
        """Runs the cluster can do at once: its worker threads (at least 1)."""
        return max(1, sum(self._client.nthreads().values()))

    def submit(self, job, lock=None):
        """Submit `job`; the runner keeps holding its `lock` (a Dask worker cannot)."""
        future = self._client.submit(_execute_on_dask_worker, job, pure=False,
                                     key=f"helpers-run-{job.experiment}-seed-{job.seed}-"
                                         f"{os.urandom(4).hex()}")
        self._futures[future] = job

    def wait(self, timeout):
        """[(job, Outcome)] for the jobs that ended within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            ended = [future for future in self._futures if future.done()]
            if ended or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        finished = []
        for future in ended:
            job = self._futures.pop(future)
            if future.cancelled():
                outcome = Outcome("interrupted")
            elif future.status == "error":  # the worker died, or the task could not run
                error = future.exception()
                outcome = Outcome("failed", f"on the Dask cluster: {type(error).__name__}: "
                                            f"{first_line(error)}")
            else:
                outcome = future.result()
            finished.append((job, outcome))
        return finished

    def interrupt(self):
        self._client.cancel([f for f in self._futures if not f.done()])

    def kill(self):
        jobs = list(self._futures.values())
        self._client.cancel(list(self._futures))
        self._futures.clear()
        return jobs

    def close(self):
        self._client.close()

"""Where the runs execute: one job executed in a warm kernel (`execute`), and the two pools that
keep several going, local worker processes (`LocalPool`) or a dask.distributed cluster
(`DaskPool`). A pool has `submit(job)`, `wait(timeout) -> [(job, Outcome)]`, `notices() ->
[line]` (what a waiting user should know), `stop() -> [job]` (end the jobs going now),
`close()`, `capacity()` and `len()` (jobs in flight); the runner drives one.
"""

import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
from dataclasses import dataclass
from typing import Optional

from ..errors import UsageError
from ..files import relative
from . import records
from .execution import NotebookFailed, WarmKernel, execute_notebook, first_line

WAIT_FOR_WORKERS = 10  # seconds a Dask cluster without workers gets to have one
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass
class Outcome:
    """How a job ended: the record its notebook wrote (None if none), and the line that says
    why it failed (empty if it did not); `usage` marks the user's mistake (the batch stops)."""
    record: Optional[dict] = None
    message: str = ""
    usage: bool = False


def execute(job, kernel):
    """Execute `job` in `kernel` (a WarmKernel) -> Outcome. Never raises."""
    failure = None
    try:
        job.output.parent.mkdir(parents=True, exist_ok=True)
        for path in (job.output, job.staged):  # an earlier run's: never taken for this one's
            path.unlink(missing_ok=True)      # (nor opened: a FIFO there goes too)
        kernel.prepare(job.cwd, job.environment)
        execute_notebook(job.notebook, job.output, job.parameters, kernel=kernel)
    except NotebookFailed as error:
        failure = error
    except Exception as error:  # the kernel would not start or reset, a folder not made...
        failure = NotebookFailed(f"{type(error).__name__}: {first_line(error)}")
    try:  # written by the notebook, even one that failed afterwards (its save on a full disk)
        record = records.read_record(job.staged)
    except records.DamagedRecord as why:
        record = None
        failure = failure or NotebookFailed(f"the notebook finished without a valid record at "
                                            f"{relative(job.staged)} ({why})")
    return Outcome(record, failure.message if failure else "", bool(failure and failure.usage))


def _log_to(path):
    """Send this process's stdout/stderr (and the kernel it starts) to a new file at `path`."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)  # whatever is there (a FIFO would block the open)
        log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError:
        log = os.open(os.devnull, os.O_WRONLY)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)


def _worker(connection, runner):
    """A local worker: executes the jobs it receives, one at a time, in one warm kernel, until
    it receives None or the pipe closes. It dies with the runner: the OS kills it
    (PR_SET_PDEATHSIG) when the runner's thread that forked it ends."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the runner kills its workers when it can
        pass
    if os.getppid() != runner:  # the runner died before the line above
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the runner's to act on
    for signum in (signal.SIGTERM, signal.SIGHUP):  # these end a worker, and so its run
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    # The parameters were checked before the batch: papermill's warnings are noise here.
    logging.getLogger("papermill").setLevel(logging.ERROR)
    kernel = WarmKernel()
    try:
        while True:
            try:
                job = connection.recv()
            except (EOFError, OSError):
                break
            if job is None:
                break
            _log_to(job.log)  # a kernel's own output (a crash) goes to the log of its first run
            outcome = execute(job, kernel)
            if outcome.message:  # the next run gets a fresh kernel, not a broken one
                kernel.stop()
            connection.send(outcome)
    finally:
        kernel.stop()


class LocalPool:
    """Worker processes forked from the runner, each executing one job at a time in its warm
    kernel. A worker killed by anyone costs exactly the job it was doing (reported failed);
    the next job starts a new worker."""

    def __init__(self):
        import psutil

        self._psutil = psutil
        self._context = multiprocessing.get_context("fork")
        self._workers = {}  # Process -> [connection, the job it does or None]
        self._said, self._next_look = set(), 0.0

    def __len__(self):
        return sum(job is not None for _, job in self._workers.values())

    def capacity(self):
        return os.cpu_count() or 1

    def submit(self, job):
        for process, slot in self._workers.items():
            if slot[1] is None and process.is_alive():
                try:
                    slot[0].send(job)
                    slot[1] = job
                    return
                except OSError:  # it died just now: wait() removes it
                    continue
        ours, theirs = self._context.Pipe()
        process = self._context.Process(target=_worker, args=(theirs, os.getpid()),
                                        daemon=True, name="helpers run worker")
        # Signals stay blocked until the worker has its own handlers (no window with ours).
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        theirs.close()
        self._workers[process] = [ours, job]
        try:
            ours.send(job)
        except OSError:  # it died at once: wait() reports the job failed
            pass

    def wait(self, timeout):
        multiprocessing.connection.wait([c for c, _ in self._workers.values()] +
                                        [p.sentinel for p in self._workers], timeout)
        finished = []
        for process, (connection, job) in list(self._workers.items()):
            try:
                outcome = connection.recv() if connection.poll() else None
            except (EOFError, OSError):
                outcome = None
            if outcome is not None:
                finished.append((job, outcome))
                self._workers[process][1] = None
            elif not process.is_alive():
                process.join()
                if job is not None:
                    code = process.exitcode
                    how = (f"killed by {signal.Signals(-code).name}" if code and code < 0
                           else f"exit code {code}")
                    finished.append((job, Outcome(message=f"its worker process died ({how}) "
                                                          f"before reporting")))
                del self._workers[process]
                connection.close()
        return finished

    def _family(self, processes):
        family = []
        for process in processes:
            try:
                worker = self._psutil.Process(process.pid)
                family += [worker, *worker.children(recursive=True)]
            except self._psutil.Error:
                pass
        return family

    def notices(self):
        """A line for each process of a run found suspended (SIGSTOP, Ctrl-Z); looked for
        every 2 s."""
        if time.monotonic() < self._next_look:
            return []
        self._next_look, lines = time.monotonic() + 2, []
        for process in self._family(p for p, (_, job) in self._workers.items() if job):
            try:
                if process.status() == self._psutil.STATUS_STOPPED and process.pid not in \
                        self._said:
                    self._said.add(process.pid)
                    lines.append(f"waiting for pid {process.pid} ({process.name()}) of a run, "
                                 f"which is suspended: kill -CONT {process.pid} resumes it")
            except self._psutil.Error:
                pass
        return lines

    def stop(self):
        """Kill every worker and its kernel now -> the jobs they were doing."""
        jobs = [job for _, job in self._workers.values() if job is not None]
        self._kill(list(self._workers))
        return jobs

    def close(self, grace=10):
        """Let the idle workers shut their kernels down and end; kill what is left after
        `grace` seconds."""
        for connection, _ in self._workers.values():
            try:
                connection.send(None)
            except OSError:
                pass
        deadline = time.monotonic() + grace
        for process in self._workers:
            process.join(max(0.0, deadline - time.monotonic()))
        self._kill(list(self._workers))

    def _kill(self, processes):
        family = self._family(processes)
        for process in family:
            try:
                # a kernel killed here leaves its connection file (-f FILE) behind: removed
                files = [arg for arg in process.cmdline() if arg.endswith(".json")]
                process.kill()
                for path in files:
                    if os.path.basename(path).startswith("kernel-"):
                        os.unlink(path)
            except (self._psutil.Error, OSError):
                pass
        self._psutil.wait_procs(family, timeout=5)
        for process in processes:
            process.join()
            self._workers.pop(process)[0].close()


_dask_kernels = threading.local()  # one warm kernel per thread of a Dask worker


def _execute_on_dask(job):
    """`execute` in a Dask worker's task thread (the kernel's output goes to the worker's log)."""
    logging.getLogger("papermill").setLevel(logging.ERROR)
    kernel = getattr(_dask_kernels, "kernel", None) or WarmKernel()
    _dask_kernels.kernel = kernel
    outcome = execute(job, kernel)
    if outcome.message:
        kernel.stop()
    return outcome


class DaskPool:
    """Jobs on an existing dask.distributed cluster (`--scheduler ADDRESS`): one task per job,
    in a warm kernel per worker thread. The workers need this package, and the notebooks and
    MNIST at the same paths; the record comes back with the task. Dask cannot stop a running
    task: `stop` cancels the tasks, and one that runs on writes into its runs folder a record
    that this runner never publishes."""

    def __init__(self, address):
        from distributed import Client

        # what the runner says of a lost cluster is one line a run; not distributed's tracebacks
        for name in ["distributed", *logging.root.manager.loggerDict]:
            if name.startswith("distributed"):
                logging.getLogger(name).setLevel(logging.CRITICAL)
        try:
            self._client = Client(address, timeout=10)
        except Exception as error:  # unreachable, a malformed address, tls:// without keys
            # (TypeError)...: distributed raises many kinds, all the user's to fix
            raise UsageError(f"cannot reach the Dask scheduler at {address} ({type(error).__name__}"
                             f": {first_line(error)}): check the address, or start one with "
                             f"`dask scheduler` and `dask worker ADDRESS`") from None
        try:
            self._client.wait_for_workers(1, timeout=WAIT_FOR_WORKERS)
        except Exception:  # (TimeoutError)
            self.close()
            raise UsageError(f"the Dask scheduler at {address} has no worker (waited "
                             f"{WAIT_FOR_WORKERS} s): start some with `dask worker {address}`, "
                             f"or run here without --scheduler") from None
        self._futures, self._said = {}, False

    def __len__(self):
        return len(self._futures)

    def capacity(self):
        return max(1, sum(self._client.nthreads().values()))

    def submit(self, job):
        future = self._client.submit(_execute_on_dask, job, pure=False,
                                     key=f"helpers-run-{job.experiment}-seed-{job.seed}-"
                                         f"{os.urandom(4).hex()}")
        self._futures[future] = job

    def wait(self, timeout):
        from distributed import wait

        if not self._futures:
            time.sleep(timeout)
            return []
        try:
            done = wait(list(self._futures), timeout=timeout, return_when="FIRST_COMPLETED").done
        except TimeoutError:
            return []
        except Exception as error:  # the scheduler is gone, say
            return [(job, Outcome(message=f"lost with the Dask cluster ({type(error).__name__}: "
                                          f"{first_line(error)})")) for job in self.stop()]
        finished = []
        for future in done:
            job = self._futures.pop(future)
            try:
                finished.append((job, future.result()))
            except Exception as error:  # a worker died, the scheduler went, the task was lost
                finished.append((job, Outcome(message=f"on the Dask cluster: "
                                                      f"{type(error).__name__}: {first_line(error)}")))
        return finished

    def notices(self):
        try:
            workers = len(self._client.nthreads())
        except Exception:
            return []
        said, self._said = self._said, workers == 0
        return ["the Dask cluster has no worker now: its runs wait for one"] if \
            workers == 0 and not said else []

    def stop(self):
        jobs = list(self._futures.values())
        try:
            self._client.cancel(list(self._futures), force=True)
        except Exception:  # the scheduler is gone: nothing left to cancel
            pass
        self._futures.clear()
        return jobs

    def close(self):
        try:
            self._client.close()
        except Exception:
            pass

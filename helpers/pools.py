"""Where the runs execute: one papermill run (`execute`), and the pools that keep several going.

A pool is anything with `submit(run)`, `wait(timeout) -> [(run, outcome)]`, `interrupt()`,
`kill()`, `close()` and `len()` (runs in flight); `running.run` drives one. Two are here:
- `LocalPool`: worker processes forked from the runner, each executing one run at a time in
  its warm kernel (`kernels.WarmKernel`: started once, its namespace reset before each run,
  restarted after a failed run);
- `DaskPool`: one task per run on an existing dask.distributed cluster (`--scheduler`).

An outcome is a dict: status ("done", "failed" or "interrupted"), message (the error line),
usage (the failure is the user's mistake: the batch stops) and seconds.
"""

import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import time
from dataclasses import dataclass, field

from . import results
from .errors import UsageError

# A run failing with one of these is the user's mistake, the same for every run: stop the batch.
USAGE_ERRORS = ("UsageError", "DataError")


# ---------------------------------------------------------------------------------------------
# Executing one run (in a worker process)
# ---------------------------------------------------------------------------------------------
_interrupted = False


def _interrupt_kernel(signum, frame):
    """Worker's SIGINT/SIGTERM handler: interrupt the kernel, so papermill stops with an error.

    SIGINT makes a KeyboardInterrupt in the running cell, so the notebook's cleanups run (the
    atomic record write removes its temporary file). A kernel that is starting or between two
    cells misses it, so it is sent again every second until the run ends.
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


def first_line(text):
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


def error_line(error):
    """The line that says why a cell failed: the exception, else the cell that raised it."""
    if first_line(error.evalue):
        return f"{error.ename}: {first_line(error.evalue)}"
    return f"{error.ename} in cell [{error.exec_count}]: {first_line(error.source)}"


def import_papermill():
    """papermill, imported without jsonschema's optional rfc3987_syntax.

    jsonschema (under papermill's nbformat) imports rfc3987_syntax, when installed, for IRI
    formats that no notebook schema uses, and it builds ~35 parsers as it is imported: 0.9 s of
    papermill's 1.2 s (python-jsonschema/jsonschema#1428), paid by every worker at start-up.
    A None in sys.modules makes that optional import fail, which jsonschema allows for.
    """
    sys.modules.setdefault("rfc3987_syntax", None)
    import papermill

    return papermill


def execute(run, kernel=None):
    """Execute `run` with papermill, in `kernel` (a kernels.WarmKernel) or else a fresh kernel;
    return its outcome dict. Never raises."""
    papermill = import_papermill()

    from .kernels import KERNEL, KERNEL_START_TIMEOUT, set_kernel_environment

    started = time.monotonic()
    usage = False
    try:
        set_kernel_environment(run.environment)
        run.output.parent.mkdir(parents=True, exist_ok=True)
        run.output.unlink(missing_ok=True)  # an earlier run's notebook must not pass for this one
        # The executed notebook is written once, at the end (with the error where a cell
        # failed): papermill's save after every cell cost ~0.1 s a run.
        papermill.execute_notebook(
            str(run.notebook), str(run.output), parameters=run.parameters, kernel_name=KERNEL,
            cwd=str(run.cwd), progress_bar=False, start_timeout=KERNEL_START_TIMEOUT,
            request_save_on_cell_execute=False, km=kernel.manager(run) if kernel else None)
    except papermill.PapermillExecutionError as error:
        status, message = "failed", error_line(error)
        usage = error.ename in USAGE_ERRORS
    except Exception as error:  # kernel died or would not start, notebook unreadable...
        status, message = "failed", f"{type(error).__name__}: {first_line(error)}"
    else:
        try:
            results.read_record(run.record)
            status, message = "done", ""
        except results.DamagedRecord as why:
            status, message = "failed", (f"the notebook finished without a valid record at "
                                         f"{run.record} ({why})")
    if kernel and status != "done":  # the next run gets a fresh kernel, not a broken one
        kernel.stop()
    if _interrupted and status != "done":  # a run whose record got written is done
        status = "interrupted"
    return {"status": status, "message": message, "usage": usage,
            "seconds": time.monotonic() - started}


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


def _worker(connection):
    """A local worker: executes the runs it receives, one at a time, in one warm kernel, until
    it receives None (or the pipe closes, or it is interrupted)."""
    signal.signal(signal.SIGINT, _interrupt_kernel)
    signal.signal(signal.SIGTERM, _interrupt_kernel)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    # The parameters were checked before the batch: papermill's warnings about parsing the
    # parameters cell are noise here. The kernel's own stdout/stderr (startup warnings, a crash)
    # go to runs/<experiment>/seed-<k>.log of the run that started it, not over the progress bar.
    logging.getLogger("papermill").setLevel(logging.ERROR)
    from .kernels import WarmKernel

    kernel = WarmKernel()
    try:
        while not _interrupted:
            try:
                run = connection.recv()
            except (EOFError, OSError):
                break
            if run is None:
                break
            _log_to(run.output.with_suffix(".log"))
            if kernel.km is None:  # the first run, or the last one failed: the kernel boots and
                kernel.start(run.cwd, run.environment)  # imports while papermill is imported
            connection.send(execute(run, kernel))
    finally:
        kernel.stop()
        connection.close()


@dataclass(eq=False)
class _LocalWorker:
    process: multiprocessing.Process
    connection: multiprocessing.connection.Connection  # runs go out, outcomes come back
    run: object = None  # the running.Run it is doing; None when idle
    descendants: dict = field(default_factory=dict)  # pid -> psutil.Process (its kernel)


class LocalPool:
    """Runs in worker processes on this machine, forked from the runner, each executing one run
    at a time in its warm kernel (`kernels.WarmKernel`).

    A worker killed by anyone (SIGKILL, out of memory) costs exactly the run it was doing,
    which is reported as failed; the next run starts a new worker. Each worker imports papermill
    itself, while its kernel starts. The pool remembers each worker's descendants (its kernel)
    to stop them too. `close()` stops the idle workers and their kernels: call it when the batch
    ends.
    """

    def __init__(self):
        import psutil

        self._psutil = psutil
        self._context = multiprocessing.get_context("fork")
        self._workers = []

    def __len__(self):  # runs in flight
        return sum(worker.run is not None for worker in self._workers)

    def submit(self, run):
        worker = next((w for w in self._workers if w.run is None and w.process.is_alive()),
                      None) or self._start_worker()
        worker.connection.send(run)
        worker.run = run

    def _start_worker(self):
        ours, theirs = self._context.Pipe()
        process = self._context.Process(target=_worker, args=(theirs,), daemon=True,
                                        name="helpers run worker")
        # Signals stay blocked until the worker has its own handlers (no window with ours).
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
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
        """[(run, outcome)] for the runs that ended within `timeout` seconds."""
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
                finished.append((worker.run, outcome))
                worker.run = None
            elif worker.run is not None and worker.process.is_alive():
                continue  # still running
            if worker.process.is_alive():
                continue  # idle, ready for the next run
            worker.process.join()  # it ended: idle after an interruption, or killed
            if worker.run is not None:
                code = worker.process.exitcode
                how = (f"killed by {signal.Signals(-code).name}" if code and code < 0
                       else f"exit code {code}")
                finished.append((worker.run, {
                    "status": "failed", "usage": False, "seconds": None,
                    "message": f"its worker process died ({how}) before reporting"}))
            self._remove(worker)
        return finished

    def _remove(self, worker):
        self._workers.remove(worker)
        worker.connection.close()
        self._kill_all(worker.descendants.values())  # an orphaned kernel, if any

    def interrupt(self):
        """Ask every busy worker to stop (they interrupt their kernels)."""
        for worker in self._workers:
            if worker.run is not None and worker.process.is_alive():
                os.kill(worker.process.pid, signal.SIGTERM)

    def kill(self, idle_too=False):
        """Kill every busy worker (and idle ones with `idle_too`) and its kernel now;
        -> the runs they were doing."""
        self._track_descendants()
        runs = []
        for worker in [w for w in self._workers if idle_too or w.run is not None]:
            self._kill_all([self._psutil.Process(worker.process.pid)]
                           if worker.process.is_alive() else [])
            worker.process.join()
            self._remove(worker)
            runs += [worker.run] if worker.run is not None else []
        return runs

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
        self.kill(idle_too=True)

    def _kill_all(self, processes):
        processes = list(processes)
        for proc in processes:
            try:
                if proc.is_running():  # also checks the pid was not reused
                    proc.kill()
            except self._psutil.Error:
                pass
        self._psutil.wait_procs(processes, timeout=5)


def _execute_on_dask_worker(run):
    """`execute` in a Dask worker's task thread (the kernel's output goes to the worker's log)."""
    logging.getLogger("papermill").setLevel(logging.ERROR)
    return execute(run)


class DaskPool:
    """Runs on an existing dask.distributed cluster (`--scheduler ADDRESS`): one task per run,
    executing the notebook with papermill on a worker in a fresh kernel per run (a local worker
    keeps one warm; keeping kernels warm on Dask workers is not done yet).

    The workers need this package installed, the same paths to the notebooks, results, runs
    and MNIST folders (a shared file system), and the `python3` kernel. Skipping, locking and
    the failure report stay here in the runner. Dask cannot stop a task that is running:
    `interrupt`/`kill` cancel the runs not started and stop waiting for the others.
    """

    def __init__(self, address, timeout=10):
        from distributed import Client

        try:
            self._client = Client(address, timeout=timeout)
        except (OSError, TimeoutError, ValueError) as error:
            raise UsageError(f"cannot reach the Dask scheduler at {address} ({type(error).__name__}"
                             f": {first_line(error)}): check the address, or start one with "
                             f"`dask scheduler` and `dask worker ADDRESS`") from None
        self._futures = {}  # future -> run

    def __len__(self):
        return len(self._futures)

    def capacity(self):
        """Runs the cluster can do at once: its worker threads (at least 1)."""
        return max(1, sum(self._client.nthreads().values()))

    def submit(self, run):
        future = self._client.submit(_execute_on_dask_worker, run, pure=False,
                                     key=f"helpers-run-{run.experiment}-seed-{run.seed}-"
                                         f"{os.urandom(4).hex()}")
        self._futures[future] = run

    def wait(self, timeout):
        """[(run, outcome)] for the runs that ended within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            ended = [future for future in self._futures if future.done()]
            if ended or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        finished = []
        for future in ended:
            run = self._futures.pop(future)
            if future.cancelled():
                outcome = {"status": "interrupted", "message": "", "usage": False,
                           "seconds": None}
            elif future.status == "error":  # the worker died, or the task could not run
                error = future.exception()
                outcome = {"status": "failed", "usage": False, "seconds": None,
                           "message": f"on the Dask cluster: {type(error).__name__}: "
                                      f"{first_line(error)}"}
            else:
                outcome = future.result()
            finished.append((run, outcome))
        return finished

    def interrupt(self):
        self._client.cancel([f for f in self._futures if not f.done()])

    def kill(self):
        runs = list(self._futures.values())
        self._client.cancel(list(self._futures))
        self._futures.clear()
        return runs

    def close(self):
        self._client.close()

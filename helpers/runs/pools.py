"""Where runs execute: each in the warm kernel of a thread of a dask.distributed worker, on a
cluster of the runner's own (threads of its process) or on an existing one (--scheduler)."""

import logging
import os
import threading
from dataclasses import dataclass
from typing import Optional

from ..errors import UsageError
from ..files import relative
from . import records
from .execution import NotebookFailed, WarmKernel, execute_notebook, first_line

KERNELS = []  # the warm kernels of this process, killed when a batch ends
_here = threading.local()


@dataclass
class Outcome:
    """The record a run's notebook wrote (or None), the line that says why the run failed ("" if
    it did not), and whether that is the user's mistake (the batch stops)."""
    record: Optional[dict] = None
    message: str = ""
    usage: bool = False


def execute(job, kernel):
    """Execute `job` in `kernel` (a WarmKernel) -> Outcome; never raises. A kernel left broken
    is stopped: the next run starts another."""
    failure = None
    try:
        job.output.parent.mkdir(parents=True, exist_ok=True)
        for path in (job.output, job.staged, job.log):  # an earlier run's is never this one's
            path.unlink(missing_ok=True)               # (and a FIFO there goes unopened)
        kernel.prepare(job.cwd, job.environment, job.log)
        execute_notebook(job.notebook, job.output, job.parameters, kernel=kernel)
    except NotebookFailed as error:
        failure = error
    except Exception as error:  # the kernel would not start or reset, a folder not made...
        failure = NotebookFailed(f"{type(error).__name__}: {first_line(error)}")
    try:  # even a notebook that failed after its save (its own save, on a full disk) made it
        record = records.read_record(job.staged)
    except records.DamagedRecord as why:
        record = None
        failure = failure or NotebookFailed(f"the notebook finished without a valid record at "
                                            f"{relative(job.staged)} ({why})")
    if failure and not job.output.is_file() and kernel.log:  # the kernel's output says why
        failure.message += f" (kernel log: {relative(kernel.log)})"
    if failure:
        kernel.stop()
    return Outcome(record, failure.message if failure else "", bool(failure and failure.usage))


def execute_here(job):
    """`execute` in this thread's warm kernel (a task of a Dask worker)."""
    if not hasattr(_here, "kernel"):
        _here.kernel = WarmKernel()
        KERNELS.append(_here.kernel)
    return execute(job, _here.kernel)


def connect(scheduler=None, workers=None, wait=10):
    """A dask.distributed Client of the cluster at `scheduler`, or of one in this process with
    `workers` threads (kernels exit with the process that starts them: ipykernel watches it).
    UsageError for a scheduler that cannot be used."""
    from distributed import Client

    # a lost cluster is one line a run, not distributed's tracebacks
    for name in ["distributed", *logging.root.manager.loggerDict]:
        if name.startswith("distributed"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    if scheduler is None:
        return Client(processes=False, n_workers=1, threads_per_worker=workers or os.cpu_count(),
                      dashboard_address=None, memory_limit=0)
    try:
        client = Client(scheduler, timeout=10)
    except Exception as error:  # unreachable, a malformed address, tls:// without keys...
        raise UsageError(f"cannot reach the Dask scheduler at {scheduler} ({type(error).__name__}"
                         f": {first_line(error)}): check the address, or start one with "
                         f"`dask scheduler` and `dask worker ADDRESS`") from None
    try:
        client.wait_for_workers(1, timeout=wait)
    except Exception:  # (TimeoutError)
        client.close()
        raise UsageError(f"the Dask scheduler at {scheduler} has no worker (waited {wait} s): "
                         f"start some with `dask worker {scheduler}`, or run here without "
                         f"--scheduler") from None
    return client


def ended(going, timeout):
    """[(future, Outcome)] for the futures of `going` that ended within `timeout` seconds; for
    all of them, lost, if the cluster is gone."""
    from distributed import wait

    try:
        done, gone = wait(list(going), timeout=timeout, return_when="FIRST_COMPLETED").done, None
    except TimeoutError:
        return []
    except Exception as error:  # the cluster is gone
        done, gone = list(going), error
    outcomes = []
    for future in done:
        try:
            if gone is not None:
                raise gone
            outcome = future.result()
        except Exception as error:  # the scheduler went, a worker died...
            outcome = Outcome(message=f"lost with the Dask cluster ({type(error).__name__}: "
                                      f"{first_line(error)})")
        outcomes.append((future, outcome))
    return outcomes


def suspended(said):
    """A line for each kernel of this process found suspended (SIGSTOP, Ctrl-Z) and not in
    `said`, the pids already told (which it extends)."""
    import psutil

    lines = []
    for pid in {kernel.pid for kernel in KERNELS if kernel.pid} - said:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_STOPPED:
                said.add(pid)
                lines.append(f"waiting for pid {pid} (a run's kernel), which is suspended: "
                             f"kill -CONT {pid} resumes it")
        except psutil.Error:
            pass
    return lines

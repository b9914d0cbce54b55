"""Where runs execute: each in the warm kernel (helpers.kernel) of a Dask worker's thread, on the
runner's own cluster or on --scheduler's."""

import contextlib
import logging
import os
import threading

from ..errors import UsageError
from ..files import relative
from ..kernel import NotebookFailed, WarmKernel, execute_notebook, first_line
from . import records

KERNELS = []  # the warm kernels of this process, killed when a batch ends
_here = threading.local()


def execute(job, kernel):
    """Execute `job` in `kernel` (a WarmKernel) -> (the record its notebook saved or None, the
    NotebookFailed that says why it failed or None); never raises."""
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
    if failure:  # (a kernel left broken: the next run starts another)
        failure.message += f" (kernel log: {relative(kernel.log)})" * bool(
            not job.output.is_file() and kernel.log)  # (the kernel's output says why)
        kernel.stop()
    return record, failure


def execute_here(job):  # a task of a Dask worker: in this thread's warm kernel
    if not hasattr(_here, "kernel"):
        _here.kernel = WarmKernel()
        KERNELS.append(_here.kernel)
    return execute(job, _here.kernel)


def connect(scheduler=None, workers=None, wait=10):
    """A Client of the cluster at `scheduler` (UsageError if unusable), or of one in this
    process with `workers` threads."""
    from distributed import Client

    for name in ["distributed", *logging.root.manager.loggerDict]:  # a lost cluster: our lines
        if name.startswith("distributed"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    if scheduler is None:
        return Client(processes=False, n_workers=1, threads_per_worker=workers or os.cpu_count(),
                      memory_limit=0, dashboard_address="127.0.0.1:0",  # (their HTTP servers:
                      worker_dashboard_address="127.0.0.1:0")           # loopback only)
    try:
        client = Client(scheduler, timeout=10)
    except Exception as error:  # unreachable, a malformed address, tls:// without keys...
        raise UsageError(f"cannot reach the Dask scheduler at {scheduler} ({type(error).__name__}"
                         f": {first_line(error)}): check the address, or start a cluster (dask "
                         f"scheduler, dask worker ADDRESS)") from None
    try:
        client.wait_for_workers(1, timeout=wait)
    except Exception:  # (TimeoutError)
        client.close()
        raise UsageError(f"the Dask scheduler at {scheduler} has no worker (waited {wait} s): "
                         f"start some with `dask worker {scheduler}`, or run here without "
                         f"--scheduler") from None
    return client


def ended(going, timeout):
    """[(future, `execute`'s result)] of `going`'s ended within `timeout` s (all, if lost)."""
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
            outcomes.append((future, future.result()))
        except Exception as error:  # the scheduler went, a worker died...
            outcomes.append((future, (None, NotebookFailed(
                f"lost with the Dask cluster ({type(error).__name__}: {first_line(error)})"))))
    return outcomes


def suspended(said, kernels=KERNELS, client=None):
    """A line for each of `kernels` found suspended (SIGSTOP), and for `client`'s scheduler if
    it does not answer in 5 s, unless `said` has it (its pid, "scheduler")."""
    import psutil

    lines = []
    try:
        client and client.sync(client.scheduler.identity, callback_timeout=5)
        said.discard("scheduler")
    except TimeoutError:
        lines += [f"waiting for the Dask scheduler at {client.scheduler.address}, which does not "
                  f"answer (suspended? kill -CONT resumes it)"] * ("scheduler" not in said)
        said.add("scheduler")
    except Exception:  # gone: `ended` says so
        pass
    for pid in {kernel.pid for kernel in kernels if kernel.pid} - said:
        with contextlib.suppress(psutil.Error):
            if psutil.Process(pid).status() == psutil.STATUS_STOPPED:
                said.add(pid)
                lines.append(f"waiting for pid {pid} (a notebook's kernel), which is suspended: "
                             f"kill -CONT {pid} resumes it")
    return lines

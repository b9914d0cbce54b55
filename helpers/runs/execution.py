"""Where runs execute: a notebook executed by papermill in a `WarmKernel` (its failure told in
one line), each run in the warm kernel of a thread of a dask.distributed worker, on the
runner's own cluster (threads of its process) or on an existing one (--scheduler)."""

import logging
import os
import signal
import threading
from pathlib import Path

from ..errors import UsageError
from ..files import relative
from ..science import PROGRESS_VARIABLE
from . import records

USAGE_ERRORS = ("UsageError", "DataError")  # a notebook failing with these: the user's mistake
KERNEL, KERNEL_START_TIMEOUT = "python3", 180  # seconds: kernels start slowly on a busy machine
# No history file (as nbclient starts kernels); only errors in the log: ipykernel warns about
# plain-text TCP on loopback at every start (CurveZMQ would make every shutdown log an error).
KERNEL_ARGUMENTS = ["--HistoryManager.hist_file=:memory:", "--IPKernelApp.log_level=ERROR"]
# Set when the BLAS/OpenMP runtimes load, these change a training's numbers even with threads
# fixed (docs/numerics.md), and dask's workers set them: no kernel starts with them.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


class NotebookFailed(Exception):
    """`message`: the one line that says why a notebook failed; `usage`: the user's mistake."""

    def __init__(self, message, usage=False):
        super().__init__(message)
        self.message, self.usage = message, usage


def first_line(text):
    return next((line.strip() for line in str(text).splitlines() if line.strip()), "")


def import_papermill():
    """papermill, with an engine for a live kernel and its ready client, which nbclient leaves
    running (papermill's advice)."""
    import papermill
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines

    class WarmKernelEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, km=None, kc=None, **unused):
            client = PapermillNotebookClient(nb_man, km=km, kernel_name=kernel_name)
            client.kc = kc
            return client.execute()

    papermill_engines.register("warm-kernel", WarmKernelEngine)
    logging.getLogger("papermill").setLevel(logging.ERROR)  # the parameters are checked before
    return papermill


def execute_notebook(notebook, output, parameters, kernel):
    """Execute `notebook` by papermill into `output` (with the error where a cell failed) in
    `kernel` (a prepared WarmKernel): written beside it, then renamed over whatever is there (a
    FIFO is never waited on). NotebookFailed with the failing cell's exception (else its first
    line), or why the kernel died."""
    papermill = import_papermill()
    written = Path(output).with_name(f".{Path(output).stem}.{os.urandom(4).hex()}.tmp.ipynb")
    try:
        papermill.execute_notebook(str(notebook), str(written), parameters=parameters,
                                   kernel_name=KERNEL, progress_bar=False, engine_name="warm-kernel",
                                   request_save_on_cell_execute=False, km=kernel.km, kc=kernel.kc)
    except papermill.PapermillExecutionError as error:
        line = (f"{error.ename}: {first_line(error.evalue)}" if first_line(error.evalue)
                else f"{error.ename} in cell [{error.exec_count}]: {first_line(error.source)}")
        raise NotebookFailed(line, usage=error.ename in USAGE_ERRORS) from None
    except Exception as error:  # the kernel died, an unreadable notebook
        raise NotebookFailed(f"{type(error).__name__}: {first_line(error)}") from None
    finally:
        if written.exists():
            os.replace(written, output)


class WarmKernel:
    """A kernel kept from run to run, its client connected and ready once (docs/speed.md), its
    namespace reset between runs (modules stay; a record is a new kernel's: tested). It starts
    without THREAD_VARIABLES or progress bars, and exits with the process that started it."""

    RESET = ("import sys\n"
             "if 'matplotlib.pyplot' in sys.modules:\n"
             "    sys.modules['matplotlib.pyplot'].close('all')\n"
             "get_ipython().reset(new_session=True)  # also numbers the cells from 1 again\n"
             "__import__('gc').freeze()  # the next reset's collection skips the modules")
    km = kc = pid = log = started_for = None
    used = killed = False

    def prepare(self, cwd, environment, log=None):
        """Start a kernel in `cwd` with `environment` (its output to a new file `log`), unless
        one started so runs (both are fixed when a kernel starts): reset that one."""
        from jupyter_core.utils import run_sync

        if self.killed:  # the batch is ending: a reset would wait its whole timeout for no answer
            raise RuntimeError("the kernel was killed: the batch is stopping")
        if self.started_for != (str(cwd), environment) or not run_sync(self.km.is_alive)():
            # A kernel binds ports its manager found free: another process may take one between,
            # and the kernel dies starting (jupyter_client#154). One that died so starts once more.
            for attempt in range(2):
                self._start(cwd, environment, log, append=bool(attempt))
                try:
                    run_sync(self.kc.wait_for_ready)(timeout=KERNEL_START_TIMEOUT)
                    os.unlink(self.km.connection_file)  # (its keys: read, and kept in memory)
                    break
                except RuntimeError:  # died, or no answer in time (then no second start)
                    if attempt or self.killed or run_sync(self.km.is_alive)():
                        raise
        elif self.used:  # a reset takes well under a second; a kernel killed meanwhile
            reply = run_sync(self.kc.execute_interactive)(  # never answers: a short wait
                self.RESET, allow_stdin=False, timeout=20, output_hook=lambda message: None)
            if reply["content"]["status"] != "ok":
                raise RuntimeError(f"resetting the kernel failed: {reply['content'].get('ename')}")
        self.used = True

    def _start(self, cwd, environment, log, append):
        """Start a new kernel (after stopping this one), its output to `log` (`append`: after
        an earlier start's), and connect its client."""
        from jupyter_client.manager import AsyncKernelManager
        from jupyter_core.utils import run_sync

        self.stop()
        self.km, self.log = AsyncKernelManager(kernel_name=KERNEL), log
        output = os.open(log or os.devnull, os.O_WRONLY | (
            os.O_APPEND if append else os.O_CREAT | os.O_EXCL * bool(log)), 0o644)
        kept = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
        try:
            run_sync(self.km.start_kernel)(
                cwd=str(cwd), env={**kept, **environment, PROGRESS_VARIABLE: "0"},
                stdout=output, stderr=output, extra_arguments=KERNEL_ARGUMENTS)
        finally:
            os.close(output)
        self.pid, self.started_for = self.km.provisioner.pid, (str(cwd), dict(environment))
        if self.killed:  # (kill() came while it started)
            self.kill()
        self.kc = self.km.client()
        self.kc.start_channels()

    def stop(self):
        """Shut the kernel down (a failed run may have left it in any state)."""
        from jupyter_core.utils import run_sync

        try:
            if self.kc is not None:
                self.kc.stop_channels()
            if self.km is not None and self.km.has_kernel:
                run_sync(self.km.shutdown_kernel)(now=True)
        except Exception:  # already dead
            pass
        self.km = self.kc = self.pid = self.started_for = None
        self.used = False

    def kill(self):
        """Kill the kernel now, from any thread (the batch ends); its connection file goes."""
        self.killed = True
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.unlink(self.km.connection_file)
        except (AttributeError, OSError, TypeError):  # none, or gone already
            pass


KERNELS = []  # the warm kernels of this process, killed when a batch ends
_here = threading.local()


def execute(job, kernel):
    """Execute `job` in `kernel` (a WarmKernel) -> (the record its notebook saved or None, the
    NotebookFailed that says why it failed or None); never raises. A kernel left broken is
    stopped: the next run starts another."""
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
    return record, failure


def execute_here(job):  # a task of a Dask worker: in this thread's warm kernel
    if not hasattr(_here, "kernel"):
        _here.kernel = WarmKernel()
        KERNELS.append(_here.kernel)
    return execute(job, _here.kernel)


def connect(scheduler=None, workers=None, wait=10):
    """A Client of the cluster at `scheduler` (UsageError if it cannot be used), or of one in
    this process with `workers` threads."""
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
            outcome = future.result()
        except Exception as error:  # the scheduler went, a worker died...
            outcome = None, NotebookFailed(f"lost with the Dask cluster ({type(error).__name__}:"
                                           f" {first_line(error)})")
        outcomes.append((future, outcome))
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
        if "scheduler" not in said:
            said.add("scheduler")
            lines.append(f"waiting for the Dask scheduler at {client.scheduler.address}, which "
                         f"does not answer (suspended? kill -CONT resumes it)")
    except Exception:  # gone: `ended` says so
        pass
    for pid in {kernel.pid for kernel in kernels if kernel.pid} - said:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_STOPPED:
                said.add(pid)
                lines.append(f"waiting for pid {pid} (a notebook's kernel), which is suspended: "
                             f"kill -CONT {pid} resumes it")
        except psutil.Error:
            pass
    return lines

"""Where notebooks execute: papermill in a `WarmKernel`, a Jupyter kernel kept from notebook to
notebook (the runner's runs, the summary's notebooks), a failure told in one line."""

import contextlib
import logging
import os
import signal
from pathlib import Path

from .science import PROGRESS_VARIABLE

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
    """papermill, with an engine for a live kernel and its ready client (papermill's advice)."""
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
    """Execute `notebook` by papermill in `kernel` (a prepared WarmKernel) into `output` (written
    beside it, then renamed over whatever is there: a FIFO is never waited on). NotebookFailed
    with the failing cell's exception (else its first line), or why the kernel died."""
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
        written.exists() and os.replace(written, output)


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
        one started so is alive: reset that one."""
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
        """Start a new kernel, its output to `log` (`append`: after an earlier start's)."""
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

        with contextlib.suppress(Exception):  # (already dead)
            self.kc is None or self.kc.stop_channels()
            self.km is None or not self.km.has_kernel or run_sync(self.km.shutdown_kernel)(now=True)
        self.km = self.kc = self.pid = self.started_for = None
        self.used = False

    def kill(self):
        """Kill the kernel now, from any thread (the batch ends); its connection file goes."""
        self.killed = True
        with contextlib.suppress(AttributeError, OSError, TypeError):  # none, or gone already
            os.kill(self.pid, signal.SIGKILL)
            os.unlink(self.km.connection_file)

"""One notebook executed by papermill in a `WarmKernel`, its failure told in one line."""

import os
import signal
import sys

from ..science import PROGRESS_VARIABLE

USAGE_ERRORS = ("UsageError", "DataError")  # a notebook failing with these: the user's mistake
KERNEL, KERNEL_START_TIMEOUT = "python3", 180  # seconds: kernels start slowly on a busy machine
# No history file (as nbclient starts kernels); only errors in the log: ipykernel warns about
# plain-text TCP on loopback at every start (CurveZMQ would make every shutdown log an error).
KERNEL_ARGUMENTS = ["--HistoryManager.hist_file=:memory:", "--IPKernelApp.log_level=ERROR"]
# Set when the BLAS/OpenMP runtimes load, these change a training's numbers even with threads
# fixed (docs/numerics.md), and dask's workers set them: no kernel starts with them.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


class NotebookFailed(Exception):
    """A notebook that did not run to its end: `message`, the one line that says why; `usage`:
    the cause is the user's (a UsageError or DataError in a cell)."""

    def __init__(self, message, usage=False):
        super().__init__(message)
        self.message, self.usage = message, usage


def first_line(text):
    return next((line.strip() for line in str(text).splitlines() if line.strip()), "")


def import_papermill():
    """papermill, without jsonschema's optional rfc3987_syntax, which builds parsers no notebook
    schema uses as it is imported (python-jsonschema/jsonschema#1428; docs/speed.md)."""
    sys.modules.setdefault("rfc3987_syntax", None)  # None: that optional import fails
    import logging

    import papermill
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines

    class WarmKernelEngine(NBClientEngine):
        """papermill's engine on a live kernel and its ready client (the way to a live kernel
        papermill's maintainers advise): nbclient leaves both running, owning neither."""

        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, km=None, kc=None, **unused):
            client = PapermillNotebookClient(nb_man, km=km, kernel_name=kernel_name)
            client.kc = kc
            return client.execute()

    papermill_engines.register("helpers-warm-kernel", WarmKernelEngine)
    logging.getLogger("papermill").setLevel(logging.ERROR)  # the parameters are checked before
    return papermill


def execute_notebook(notebook, output, parameters, cwd=None, kernel=None):
    """Execute `notebook` with papermill into `output` (written once, at the end, with the
    error where a cell failed) in `kernel` (a WarmKernel), else in a new one started in `cwd`.
    NotebookFailed with the line that says why: the failing cell's exception, else its first
    line; or why the kernel died or would not start."""
    papermill, own = import_papermill(), kernel is None
    try:
        if own:
            kernel = WarmKernel()
            kernel.prepare(cwd, {})
        papermill.execute_notebook(str(notebook), str(output), parameters=parameters,
                                   kernel_name=KERNEL, progress_bar=False,
                                   request_save_on_cell_execute=False,
                                   engine_name="helpers-warm-kernel", km=kernel.km, kc=kernel.kc)
    except papermill.PapermillExecutionError as error:
        line = (f"{error.ename}: {first_line(error.evalue)}" if first_line(error.evalue)
                else f"{error.ename} in cell [{error.exec_count}]: {first_line(error.source)}")
        raise NotebookFailed(line, usage=error.ename in USAGE_ERRORS) from None
    except Exception as error:  # the kernel died or would not start, an unreadable notebook
        raise NotebookFailed(f"{type(error).__name__}: {first_line(error)}") from None
    finally:
        if own:
            kernel.stop()


class WarmKernel:
    """A kernel kept from run to run, with one client, connected and ready once: a new kernel
    would import torch, matplotlib and helpers again, a new client wait for it (docs/speed.md).
    Between runs its namespace is reset (imported modules stay): the trainings set their own
    threads and seeds, so a record is a new kernel's (tested). It starts without
    THREAD_VARIABLES nor progress bars, and exits with the process that started it."""

    RESET = ("import sys\n"
             "if 'matplotlib.pyplot' in sys.modules:\n"
             "    sys.modules['matplotlib.pyplot'].close('all')\n"
             "get_ipython().reset(new_session=True)  # also numbers the cells from 1 again\n"
             "__import__('gc').freeze()  # the next reset's collection skips the modules")
    km = kc = pid = log = started_for = None
    used = killed = False

    def prepare(self, cwd, environment, log=None):
        """Start a kernel in `cwd` with `environment`, its output to a new file at `log`, unless
        one started so runs (both are fixed when a kernel starts): reset that one."""
        from jupyter_client.manager import AsyncKernelManager
        from jupyter_core.utils import run_sync

        if self.started_for != (str(cwd), environment):
            self.stop()
            self.km, self.log = AsyncKernelManager(kernel_name=KERNEL), log
            output = os.open(log or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_EXCL * bool(log))
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
            run_sync(self.kc.wait_for_ready)(timeout=KERNEL_START_TIMEOUT)
        elif self.used:
            reply = run_sync(self.kc.execute_interactive)(
                self.RESET, allow_stdin=False, timeout=60, output_hook=lambda message: None)
            if reply["content"]["status"] != "ok":
                raise RuntimeError(f"resetting the kernel failed: {reply['content'].get('ename')}")
        self.used = True

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
        """Kill the kernel now, from any thread (the batch stops); its connection file goes."""
        self.killed = True
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.unlink(self.km.connection_file)
        except (AttributeError, OSError, TypeError):  # none, or gone already
            pass

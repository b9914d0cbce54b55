"""One notebook executed by papermill, its failure told in one line, in a fresh kernel (the
summary's notebooks) or in a `WarmKernel` (the runner's runs)."""

import os
import sys

from ..science import PROGRESS_VARIABLE

USAGE_ERRORS = ("UsageError", "DataError")  # a notebook failing with these: the user's mistake
KERNEL, KERNEL_START_TIMEOUT = "python3", 180  # seconds: kernels start slowly on a loaded machine
# No history file (as nbclient starts kernels); only errors in the log: ipykernel warns about
# plain-text TCP on loopback at every start (CurveZMQ would make every shutdown log an error).
KERNEL_ARGUMENTS = ["--HistoryManager.hist_file=:memory:", "--IPKernelApp.log_level=ERROR"]
# Set when the BLAS/OpenMP runtimes load, these change a training's numbers even with threads
# fixed (docs/numerics.md); dask's workers set them. No kernel starts with them.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


class NotebookFailed(Exception):
    """A notebook that did not run to its end: `message` is the one line that says why;
    `usage` is true when the cause is the user's (a UsageError or DataError in a cell)."""

    def __init__(self, message, usage=False):
        super().__init__(message)
        self.message, self.usage = message, usage


def first_line(text):
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


def import_papermill():
    """papermill, without jsonschema's optional rfc3987_syntax, which builds parsers no notebook
    schema uses as it is imported (python-jsonschema/jsonschema#1428; docs/speed.md)."""
    sys.modules.setdefault("rfc3987_syntax", None)  # None: the optional import fails
    import papermill

    return papermill


def kernel_environment(environment):
    """What a kernel starts with: this process's environment and `environment`, without
    THREAD_VARIABLES nor progress bars (no one watches an executed notebook)."""
    kept = {name: value for name, value in os.environ.items() if name not in THREAD_VARIABLES}
    return {**kept, **environment, PROGRESS_VARIABLE: "0"}


def set_kernel_environment(environment):
    """Make this process's environment, which a kernel it starts inherits, kernel_environment's."""
    for name in THREAD_VARIABLES:
        os.environ.pop(name, None)
    os.environ.update(kernel_environment(environment))


def _warm_engine():
    """papermill's nbclient engine, registered, for a live kernel and its ready client (the way
    to a live kernel papermill's maintainers advise): nbclient then starts neither, and leaves
    both running as it owns neither."""
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines

    class WarmKernelEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, km=None, kc=None, **unused):
            client = PapermillNotebookClient(nb_man, km=km, kernel_name=kernel_name)
            client.kc = kc
            return client.execute()

    papermill_engines.register("helpers-warm-kernel", WarmKernelEngine)
    return "helpers-warm-kernel"


def execute_notebook(notebook, output, parameters, cwd=None, kernel=None, environment=None):
    """Execute `notebook` with papermill into `output` (written once, at the end, with the
    error where a cell failed), in `kernel` (a WarmKernel), else in a new kernel started in
    `cwd` with `environment`. Raises NotebookFailed with the line that says why: the exception
    of the failing cell, else its first line; or why the kernel died or would not start."""
    papermill = import_papermill()
    if kernel is None:
        set_kernel_environment(environment or {})
        engine = {"cwd": str(cwd), "extra_arguments": list(KERNEL_ARGUMENTS)}
    else:  # its working directory and environment were set when it started
        engine = {"engine_name": _warm_engine(), "km": kernel.km, "kc": kernel.kc}
    try:
        papermill.execute_notebook(str(notebook), str(output), parameters=parameters,
                                   kernel_name=KERNEL, progress_bar=False,
                                   start_timeout=KERNEL_START_TIMEOUT,
                                   request_save_on_cell_execute=False, **engine)
    except papermill.PapermillExecutionError as error:
        line = (f"{error.ename}: {first_line(error.evalue)}" if first_line(error.evalue)
                else f"{error.ename} in cell [{error.exec_count}]: {first_line(error.source)}")
        raise NotebookFailed(line, usage=error.ename in USAGE_ERRORS) from None
    except Exception as error:  # the kernel died or would not start, an unreadable notebook
        raise NotebookFailed(f"{type(error).__name__}: {first_line(error)}") from None


class WarmKernel:
    """A kernel a worker keeps from run to run, with one client, connected and ready once: a
    new kernel would import torch, matplotlib and helpers again, a new client wait for the
    kernel again (docs/speed.md). Before each later run its namespace is reset and figures
    closed: no name reaches the next run, only imported modules stay; the trainings set their
    own threads and seeds, so a record is the one a fresh kernel makes (tested). It exits when
    its worker does (ipykernel watches its parent)."""

    RESET = ("import sys\n"
             "if 'matplotlib.pyplot' in sys.modules:\n"
             "    sys.modules['matplotlib.pyplot'].close('all')\n"
             "get_ipython().reset(new_session=True)  # also numbers the cells from 1 again")
    # What every notebook imports, imported while the worker imports papermill; gc.freeze():
    # the reset's gc.collect() skips these long-lived objects.
    WARM_UP = ("import matplotlib.pyplot\n"
               "import helpers.notebook, helpers.science.training, helpers.publish.figures\n"
               "import gc\ngc.freeze()")

    km = kc = started_for = None
    used = False

    def prepare(self, cwd, environment):
        """Start the kernel in `cwd` with `environment` if there is none (or it started with
        others: both are fixed when a kernel starts), else reset it."""
        from jupyter_client.manager import AsyncKernelManager
        from jupyter_core.utils import run_sync

        if self.started_for != (str(cwd), environment):
            self.stop()
        if self.km is None:
            self.started_for = (str(cwd), dict(environment))
            self.km = AsyncKernelManager(kernel_name=KERNEL)
            run_sync(self.km.start_kernel)(cwd=str(cwd), env=kernel_environment(environment),
                                           extra_arguments=list(KERNEL_ARGUMENTS))
            self.kc = self.km.client()
            self.kc.start_channels()
            self.kc.execute(self.WARM_UP, silent=True, store_history=False)
            import_papermill()
            run_sync(self.kc.wait_for_ready)(timeout=KERNEL_START_TIMEOUT)
        elif self.used:
            reply = run_sync(self.kc.execute_interactive)(
                self.RESET, allow_stdin=False, timeout=60, output_hook=lambda message: None)
            if reply["content"]["status"] != "ok":
                raise RuntimeError(f"resetting the warm kernel failed: {reply['content']}")
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
        self.km = self.kc = self.started_for = None
        self.used = False

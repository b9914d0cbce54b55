"""One notebook executed by papermill, and its failure told in one line.

Both the runner's workers (one run per notebook) and the summary (the summary and analysis
notebooks, executed in place) execute notebooks here.
"""

import os
import sys

from ..science import PROGRESS_VARIABLE

# A notebook failing with one of these is the user's mistake: exit code 2, the batch stops.
USAGE_ERRORS = ("UsageError", "DataError")
KERNEL = "python3"
KERNEL_START_TIMEOUT = 180  # seconds; kernels start slowly on a loaded 2-core machine
# How every kernel starts: no history file (as nbclient starts them), and only errors in its
# log. Local kernels talk over TCP on loopback, and ipykernel warns about plain-text TCP at
# every start, into every run's log; CurveZMQ encryption would silence it but makes every
# kernel shutdown log a KeyboardInterrupt error instead. A kernel's crash still reaches the log.
KERNEL_ARGUMENTS = ["--HistoryManager.hist_file=:memory:", "--IPKernelApp.log_level=ERROR"]


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
    """papermill, imported without jsonschema's optional rfc3987_syntax.

    jsonschema (under papermill's nbformat) imports rfc3987_syntax, when installed, for IRI
    formats that no notebook schema uses, and builds its parsers as it is imported
    (python-jsonschema/jsonschema#1428; docs/speed.md). A None in sys.modules makes that
    optional import fail, which jsonschema allows for.
    """
    sys.modules.setdefault("rfc3987_syntax", None)
    import papermill

    return papermill


# Set when the BLAS/OpenMP runtimes load, these change a training's numbers even with
# torch.set_num_threads fixed (docs/numerics.md), and dask's workers set them. Every job's
# kernel starts without them, so a record is the same on a laptop, on Dask and in Jupyter.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def set_kernel_environment(environment):
    """Set `environment` in this process, whose environment a kernel it starts inherits; unset
    THREAD_VARIABLES and the trainings' progress bars (no one watches an executed notebook)."""
    os.environ.update(environment)
    os.environ[PROGRESS_VARIABLE] = "0"
    for name in THREAD_VARIABLES:
        os.environ.pop(name, None)


def execute_notebook(notebook, output, parameters, cwd, km=None, environment=None):
    """Execute `notebook` with papermill into `output` (written once, at the end, with the
    error where a cell failed), in `km`'s kernel or a new one started in `cwd` with
    `environment` (see set_kernel_environment).

    Raises NotebookFailed with the line that says why: the exception of the failing cell, or
    else that cell's first line; or why the kernel died or would not start.
    """
    papermill = import_papermill()
    set_kernel_environment(environment or {})
    try:
        papermill.execute_notebook(
            str(notebook), str(output), parameters=parameters, kernel_name=KERNEL,
            cwd=str(cwd), progress_bar=False, start_timeout=KERNEL_START_TIMEOUT,
            request_save_on_cell_execute=False, km=km, extra_arguments=list(KERNEL_ARGUMENTS))
    except papermill.PapermillExecutionError as error:
        line = (f"{error.ename}: {first_line(error.evalue)}" if first_line(error.evalue)
                else f"{error.ename} in cell [{error.exec_count}]: {first_line(error.source)}")
        raise NotebookFailed(line, usage=error.ename in USAGE_ERRORS) from None
    except Exception as error:  # the kernel died or would not start, an unreadable notebook
        raise NotebookFailed(f"{type(error).__name__}: {first_line(error)}") from None

"""The Jupyter kernels the runner executes notebooks in: one warm kernel per local worker.

Imported by the runner's worker processes, not by the runner itself (it never talks to a
kernel), so `python -m helpers run` starts without jupyter_client.

A fresh kernel per job would start and import torch, torchvision, matplotlib and helpers again,
and every new kernel client waits for the kernel to be ready (docs/speed.md has the times); so
a worker keeps one kernel and one client, ready once, from job to job (`WarmKernel`).
"""


from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync

from .execution import KERNEL, KERNEL_ARGUMENTS, KERNEL_START_TIMEOUT, set_kernel_environment

class _KeptClient(AsyncKernelClient):
    """A kernel client that stays connected from job to job: nbclient may start its channels
    and wait for it again, which it then skips (a dead kernel is caught by nbclient's own
    liveness checks, and by `WarmKernel.manager` before each run)."""

    ready = False

    def start_channels(self, *args, **kwargs):
        if not self.channels_running:
            super().start_channels(*args, **kwargs)

    async def wait_for_ready(self, timeout=None):
        if not self.ready:
            await AsyncKernelClient.wait_for_ready(self, timeout)
            self.ready = True


class _KernelManager(AsyncKernelManager):
    """Hands out one `_KeptClient` for the life of its kernel, instead of a new client per call
    (nbclient asks for one per notebook)."""

    _kept_client = None

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.client_factory = _KeptClient

    def client(self, **kwargs):
        if self._kept_client is None:
            self._kept_client = super().client(**kwargs)
        return self._kept_client

    def drop_client(self):
        if self._kept_client is not None:
            self._kept_client.stop_channels()
            self._kept_client = None


class WarmKernel:
    """One kernel kept running from job to job in a local worker.

    papermill hands `km` to nbclient, which starts the kernel when it has none and, as it does
    not own it, leaves it (and the client) running after the notebook. Before each later job
    the namespace is reset (and figures closed), so no name of a previous job can reach the
    next one; only imported modules stay. The trainings set their own threads and seeds
    (`run_experiment`), which keeps the records identical to a fresh kernel's. A kernel's own
    output (a crash) goes to the log of the job that started it.
    """

    RESET = ("import sys\n"
             "if 'matplotlib.pyplot' in sys.modules:\n"
             "    sys.modules['matplotlib.pyplot'].close('all')\n"
             "get_ipython().reset(new_session=True)  # also numbers the cells from 1 again")

    # What every notebook imports first (torch, torchvision, matplotlib through these): a kernel
    # started ahead of its first job imports them while its worker imports papermill. Then
    # gc.freeze(): the reset's gc.collect() skips these long-lived objects.
    WARM_UP = ("import matplotlib.pyplot\n"
               "import helpers.notebook, helpers.science.training, helpers.publish.figures\n"
               "import gc\n"
               "gc.freeze()")

    def __init__(self):
        self.km, self._started_for = None, None

    def start(self, cwd, environment):
        """Start the kernel for jobs in `cwd` with `environment`, and have it import WARM_UP
        without waiting for it. A kernel that fails to start here is left to nbclient, which
        tries again and reports why it could not."""
        set_kernel_environment(environment)
        self.km = _KernelManager(kernel_name=KERNEL)
        self._started_for = (str(cwd), sorted(environment.items()))
        try:
            # in the notebooks folder, as every kernel starts (KERNEL_ARGUMENTS)
            run_sync(self.km.start_kernel)(cwd=str(cwd),
                                           extra_arguments=list(KERNEL_ARGUMENTS))
            client = self.km.client()
            client.start_channels()
            client.execute(self.WARM_UP, silent=True, store_history=False)
        except Exception:
            self.stop()

    def manager(self, job):
        """The kernel manager for `job`: a new one (nbclient starts it), or the warm one reset."""
        # The kernel's working directory and environment are fixed when it starts.
        started_for = (str(job.cwd), sorted(job.environment.items()))
        if self.km is not None and (self._started_for != started_for
                                    or not run_sync(self.km.is_alive)()):
            self.stop()
        if self.km is None:
            self.km, self._started_for = _KernelManager(kernel_name=KERNEL), started_for
        elif self.km.has_kernel:
            run_sync(self._reset)()
        return self.km

    async def _reset(self):
        client = self.km.client()  # the kept one: its reply comes after WARM_UP's imports
        client.start_channels()
        await client.wait_for_ready(timeout=KERNEL_START_TIMEOUT)
        reply = await client.execute_interactive(self.RESET, allow_stdin=False, timeout=60,
                                                 output_hook=lambda message: None)
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"resetting the warm kernel failed: {reply['content']}")

    def stop(self):
        """Shut the kernel down (a failed job may have left it in any state)."""
        if self.km is None:
            return
        self.km.drop_client()
        if self.km.has_kernel:
            try:
                run_sync(self.km.shutdown_kernel)(now=True)
            except Exception:  # already dead: the pool kills what is left of it
                pass
        self.km = None

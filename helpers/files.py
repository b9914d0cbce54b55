"""Where the project's things are, the one way files are written (atomically), and the one
lock a records folder has.

Every default folder is named here once. A file written with `atomic_write` is either its old
complete content or its new one, whatever stops the process (Ctrl-C, SIGKILL, a full disk):
the text goes to a temporary file beside it, is flushed to disk, then renamed over the target.
"""

import contextlib
import fcntl
import os
import tempfile
import time
from pathlib import Path

from .errors import UsageError

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO_ROOT / "notebooks"
RESULTS = REPO_ROOT / "results"          # run records on the test pairs, seeds 0-9
VALIDATION = REPO_ROOT / "validation"    # run records on validation pairs, seeds 100+
RUNS = REPO_ROOT / "runs"                # executed notebooks of the runner (not committed)
FIGURES = REPO_ROOT / "figures"
README = REPO_ROOT / "README.md"
DEFAULT_DATA = REPO_ROOT / "data"        # where torchvision downloads MNIST when online


def atomic_write(path, text, mode=0o644):
    """Write `text` to `path` atomically (readable by all: mkstemp makes files private)."""
    path = Path(path)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def stale_temporaries(path):
    """Temporary files that an interrupted `atomic_write` of `path` may have left beside it."""
    path = Path(path)
    return list(path.parent.glob(f".{path.name}.*.tmp"))


def relative(path):
    """`path` relative to the current folder when that is shorter to read, else as it is."""
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def notebook_path(path, notebooks_dir):
    """`path` as a kernel in the notebooks folder sees it: relative inside the project (no
    machine's path lands in a notebook), else absolute."""
    path, notebooks_dir = Path(path).resolve(), Path(notebooks_dir).resolve()
    inside = notebooks_dir.parent in (path, *path.parents)
    return os.path.relpath(path, notebooks_dir) if inside else str(path)


def check_writable(folder, what, option):
    """UsageError unless `folder` is, or can be created as, a writable folder. Writes nothing
    that stays: a missing folder is created later, when the batch starts."""
    if not str(folder).strip():  # Path("") is the current folder: never what was meant
        raise UsageError(f"{option} is empty: name the {what} folder, e.g. {option} {what}")
    folder = Path(folder).absolute()
    try:
        folder = folder.resolve()
        existing = folder
        while not existing.exists():
            existing = existing.parent
    except PermissionError:  # a folder on the way that this user cannot enter
        blocked = next((parent for parent in reversed(folder.parents)
                        if not os.access(parent, os.X_OK)), folder.parent)
        raise UsageError(f"{what} folder {folder} cannot be reached: {blocked} cannot be "
                         f"entered (Permission denied); choose another with {option}, or fix "
                         f"its permissions") from None
    if not existing.is_dir():
        raise UsageError(f"{what} folder {folder} cannot be created: {existing} is a file, "
                         f"not a folder; choose another with {option}")
    try:  # a real probe: os.access says yes to root even on a read-only folder
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise UsageError(f"{what} folder {folder} is not writable ({error.strerror}): "
                         f"choose another with {option}, or fix its permissions") from None


def describe(pid):
    """'pid 123 (python -m helpers run ws ...)', and ', suspended' when it is stopped."""
    import psutil

    try:
        process = psutil.Process(pid)
        command = " ".join(process.cmdline()) or process.name()
        stopped = process.status() in (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP)
    except psutil.Error:
        return f"pid {pid}"
    return (f"pid {pid} ({command})" + (f", suspended (kill -CONT {pid} resumes it)"
                                        if stopped else ""))


def _holder(fd):
    """Who holds the flock on `fd`'s file, in words, from the kernel's table (Linux)."""
    found = os.fstat(fd)
    key = f"{os.major(found.st_dev):02x}:{os.minor(found.st_dev):02x}:{found.st_ino}"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for fields in map(str.split, Path("/proc/locks").read_text().splitlines()):
            if fields[1] == "FLOCK" and fields[5] == key:
                return describe(int(fields[4]))
    return "another process (on another machine?)"


def lock_folder(folder, fix, waiting=None, patience=0.0):
    """Hold the lock of `folder` (created if missing) -> a file descriptor; closing it releases
    the lock. It is flock on the folder itself, opened without following a link: no lock file to
    fake with a link or to lose to `git clean`, and the OS drops it when its holder ends. While
    another process holds it, call `waiting(holder)` (who, in words) whenever the holder
    changes, and wait; without `waiting`, raise UsageError once it has been held `patience`
    seconds (another save's lock lasts milliseconds; a runner's, its batch). `fix` ends the
    messages."""
    folder = Path(folder).resolve()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as error:
        raise UsageError(f"{relative(folder)} cannot be locked ({error.strerror}): {fix}") from None
    said, refused_at = None, time.monotonic() + patience
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if waiting is None and time.monotonic() < refused_at:
                time.sleep(0.05)
                continue
            holder = _holder(fd)
            if waiting is None:
                os.close(fd)
                raise UsageError(f"{relative(folder)} is being written by {holder}: wait until "
                                 f"it ends, or {fix}") from None
            if holder != said:
                waiting(holder)
                said = holder
            time.sleep(0.2)


def still_locked(fd, folder, fix):
    """Make sure `fd` (lock_folder's) locks the folder now at `folder`: one removed and made
    again meanwhile (`git clean`) is locked afresh under the same descriptor, or UsageError if
    another process holds it."""
    with contextlib.suppress(OSError):
        if os.path.samestat(os.fstat(fd), os.stat(folder)):
            return
    fresh = lock_folder(folder, fix)
    os.dup2(fresh, fd)
    os.close(fresh)


class Output:
    """A text stream whose writes never fail: to a closed pipe (`... 2>&1 | head`) or a stream
    that is gone they do nothing. Flushed at each write."""

    def __init__(self, stream):
        self.stream, self.flush = stream, lambda: None

    def write(self, text):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            self.stream.write(text)
            self.stream.flush()

    def isatty(self):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            return self.stream.isatty()

"""Where the project's things are, the one way files are written (atomically), and the one
lock a records folder has.

Every default folder is named here once. A file written with `atomic_write` is either its old
complete content or its new one, whatever stops the process (Ctrl-C, SIGKILL, a full disk):
the text goes to a temporary file beside it, is flushed to disk, then renamed over the target.
"""

import fcntl
import json
import os
import socket
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


def _holder(path):
    """Who holds the lock at `path`, in words, from what the holder wrote into it."""
    try:
        holder = json.loads(Path(path).read_text())
        if holder["host"] != socket.gethostname():
            return f"pid {int(holder['pid'])} on {holder['host']}"
        return describe(int(holder["pid"]))
    except (OSError, ValueError, TypeError, KeyError):
        return f"a process that did not say which ({relative(path)})"


def lock_folder(folder, fix, waiting=None, patience=0.0):
    """Hold the lock of `folder` (the file `.lock` in it, created with the folder if missing)
    -> its file descriptor; closing it releases the lock. flock: the OS drops a lock when its
    holder ends, so none outlives a killed process. While another process holds it, call
    `waiting(holder)` (who, in words) whenever the holder changes, and wait; without
    `waiting`, raise UsageError once it has been held `patience` seconds (another save's
    lock lasts milliseconds; a runner's, its batch). `fix` ends the messages."""
    path = Path(folder) / ".lock"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except PermissionError:  # another user's lock file locks as well read-only
            fd = os.open(path, os.O_RDONLY)
    except OSError as error:
        raise UsageError(f"lock file {relative(path)} cannot be opened ({error.strerror}): its "
                         f"owner can remove it (it holds no data), or {fix}") from None
    said, refused_at = None, time.monotonic() + patience
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if waiting is None and time.monotonic() < refused_at:
                time.sleep(0.05)
                continue
            holder = _holder(path)
            if waiting is None:
                os.close(fd)
                raise UsageError(f"{relative(folder)} is being written by {holder}: wait until "
                                 f"it ends, or {fix}") from None
            if holder != said:
                waiting(holder)
                said = holder
            time.sleep(0.2)
    try:  # who holds it, for those who wait (not on a read-only lock file, nor a full disk)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode(), 0)
    except OSError:
        pass
    return fd

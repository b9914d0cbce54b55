"""Which runner is writing an experiment's records, with which parameters: claim files.

The per-run locks keep two runners from doing one run at once, but not from filling one folder
with runs of different parameters (one runner asked for 2 epochs, the other for 3). So a runner
about to execute runs of an experiment first writes `<results>/<experiment>/.claim-<pid>.json`
(atomically): its pid and that process's start time (a reused pid is not mistaken for it), its
host, its command and the parameters its runs get. Then it reads the others' claims: one with
other parameters is refused (one line, exit 2); with the same parameters they share the work.
Writing before reading means that of two runners starting at once, at least one sees the other.
A runner removes its claims when it ends; a claim whose process is gone (SIGKILL) is stale and
removed by the next runner that reads it. Locks and claims also name the processes a waiting
runner waits for (`lock_holders`).
"""

import json
import os
import socket
from pathlib import Path

from ..files import atomic_write

HOST = socket.gethostname()


def _started(pid):
    """When process `pid` started (psutil's create_time), or None if there is none."""
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def write(folder, params, command):
    """Claim `folder` (an experiment's records) for runs with `params` -> the claim's path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f".claim-{os.getpid()}.json"
    atomic_write(path, json.dumps({"pid": os.getpid(), "started": _started(os.getpid()),
                                   "host": HOST, "command": command, "params": params}) + "\n")
    return path


def remove(path):
    Path(path).unlink(missing_ok=True)


def _alive(claim):
    if claim.get("host") != HOST:
        return True  # another machine's process: nothing here can tell it has ended
    started = _started(claim.get("pid"))
    return started is not None and abs(started - (claim.get("started") or 0)) < 1


def others(folder):
    """The live claims on `folder` of other processes, each a dict with its `path`; stale
    claims are removed (and unreadable ones ignored: a claim being written is complete)."""
    found = []
    for path in sorted(Path(folder).glob(".claim-*.json")):
        try:
            claim = json.loads(path.read_text())
            if claim["pid"] == os.getpid() and claim.get("host") == HOST:
                continue
        except (OSError, ValueError, TypeError, KeyError):
            continue
        if _alive(claim):
            found.append({**claim, "path": path})
        else:
            path.unlink(missing_ok=True)
    return found


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


def lock_holders(paths):
    """{path: [pid, ...]} of the processes of this user that hold these lock files open (this
    one excepted), without a process whose parent is listed too (a runner's worker holds its
    run's lock with it). Reads every process's open files: call it seldom."""
    import psutil

    wanted = {str(Path(path).resolve()): path for path in paths}
    holders = {path: [] for path in paths}
    parents = {}
    for process in psutil.process_iter(["pid", "ppid"]):
        if process.pid == os.getpid():
            continue
        try:
            files = process.open_files()
        except psutil.Error:  # gone, or another user's
            continue
        for opened in files:
            if opened.path in wanted:
                holders[wanted[opened.path]].append(process.pid)
                parents[process.pid] = process.info["ppid"]
    return {path: [pid for pid in pids if parents[pid] not in pids]
            for path, pids in holders.items()}

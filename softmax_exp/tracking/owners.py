"""Which process owns a RUNNING run, and whether that process still lives.

Every run records its owner in tags: the host, the pid, the pid's start time (pids are reused) and a
heartbeat renewed whenever metrics are sent. A later invocation uses them to tell a run whose process died
(SIGKILL, out of memory, a reboot) from one still going. psutil reads a process's start time on Linux,
macOS and Windows alike (the former /proc parsing knew Linux only).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping

from softmax_exp.tracking.tags import HEARTBEAT_TAG, HOST_TAG, PID_START_TAG, PID_TAG


def owner_tags() -> dict[str, str]:
    """This process as a run's owner: host name, pid, the pid's start time and a heartbeat (seconds
    since the epoch)."""
    pid = os.getpid()
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(pid), PID_START_TAG: process_start(pid),
            HEARTBEAT_TAG: str(int(time.time()))}


def owner_alive(tags: Mapping[str, str]) -> bool | None:
    """Whether the process named by a run's owner tags still runs: True / False on this host, None
    (cannot tell) for another host or a run without owner tags."""
    if tags.get(HOST_TAG) != socket.gethostname() or not tags.get(PID_TAG, "").isdigit():
        return None
    started = process_start(int(tags[PID_TAG]))
    if started in ("", "?"):  # gone, or alive but another user's (its start time unreadable)
        return started == "?"
    recorded = tags.get(PID_START_TAG, "")
    return not recorded or recorded == started


def is_stale(run, stale_after_s: float, now: float | None = None) -> bool:
    """A RUNNING run whose process is gone: dead on this host, or (another host) no heartbeat for
    ``stale_after_s`` seconds."""
    if run.info.status != "RUNNING":
        return False
    return owner_gone(run.data.tags, stale_after_s, run.info.start_time / 1000, now)


def owner_gone(tags: Mapping[str, str], stale_after_s: float, started_s: float,
               now: float | None = None) -> bool:
    """Whether the owner named by ``tags`` (:func:`owner_tags`, renewed heartbeat included) is gone: dead
    on this host, or (another host) no heartbeat for ``stale_after_s`` seconds (since ``started_s``,
    seconds since the epoch, without one)."""
    alive = owner_alive(tags)
    if alive is not None:
        return not alive
    beat = tags.get(HEARTBEAT_TAG, "")
    last = float(beat) if beat.isdigit() else started_s
    return (now if now is not None else time.time()) - last > stale_after_s


def process_start(pid: int) -> str:
    """The start time of process ``pid`` (seconds since the epoch, to the hundredth), "" if it is gone."""
    import psutil

    try:
        return f"{psutil.Process(pid).create_time():.2f}"
    except psutil.NoSuchProcess:
        return ""
    except psutil.AccessDenied:  # alive, owned by another user
        return "?"

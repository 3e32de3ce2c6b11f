"""Which API process owns a job or a task, and whether that process still lives.

With ``deadstock serve --workers N`` several processes share one database. A pipeline job
or a what-if task runs in the process that accepted it; its row names that process
(:func:`process_owner`: host, pid and the pid's start time, so a pid reused by another
program is not mistaken for it). A process starting later, or one asked about the row,
marks the row ``interrupted`` only when :func:`owner_alive` says its owner is gone, and so
never touches a live sibling's work.
"""

from __future__ import annotations

import functools
import os
import socket
import uuid
from pathlib import Path


def _start_ticks(pid: int) -> str | None:
    """The start time of ``pid`` in clock ticks since boot (``/proc``), None when absent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces; the fields after it are plain
    return stat.rsplit(")", 1)[1].split()[19]


@functools.cache
def _host() -> str:
    return socket.gethostname()


def process_owner() -> str:
    """A new owner string for this process, ``host:pid:start:instance``: the instance part
    tells apart two runners of one process (an app and a second one in a test), whose
    shutdowns must each stop only their own work."""
    pid = os.getpid()
    return f"{_host()}:{pid}:{_start_ticks(pid) or '?'}:{uuid.uuid4().hex[:8]}"


def owner_alive(owner: str | None) -> bool:
    """Whether the process named by ``owner`` still runs. An owner on another host cannot be
    checked and counts as alive; an empty or malformed owner (rows from before owners were
    recorded) as gone."""
    if not owner:
        return False
    host, pid_text, start, *_ = [*owner.split(":"), "", ""]
    if not pid_text.isdigit():
        return False
    if host != _host():
        return True
    return _start_ticks(int(pid_text)) == start

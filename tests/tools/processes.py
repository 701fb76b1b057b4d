"""Processes seen through ``/proc`` (Linux): a process's children, and whether a process is still running.

A process is identified by its PID and its start time, so that a later process given the same PID is not taken for
it; a zombie (exited, not yet reaped) no longer runs.
"""
import os
import time


def _stat(pid):
    """``(state, parent PID, start time)`` of ``pid``, or None when there is no such process."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            # The command name (2nd field) may hold spaces and parentheses: the other fields follow the last ')'.
            fields = f.read().rsplit(')', 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[1]), int(fields[19])


def process_id(pid):
    """``(pid, start time)`` of a running process."""
    return pid, _stat(pid)[2]


def children(pid):
    """``(pid, start time)`` of each child of ``pid``."""
    found = []
    for name in os.listdir('/proc'):
        if name.isdigit():
            stat = _stat(int(name))
            if stat is not None and stat[1] == pid:
                found.append((int(name), stat[2]))
    return found


def running(process):
    """Whether the ``(pid, start time)`` process is running."""
    stat = _stat(process[0])
    return stat is not None and stat[0] != 'Z' and stat[2] == process[1]


def wait_until_gone(processes, limit_s=600):
    """Poll until none of ``processes`` runs, or ``limit_s`` seconds pass; returns those still running."""
    deadline = time.monotonic() + limit_s
    while True:
        left = [process for process in processes if running(process)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)

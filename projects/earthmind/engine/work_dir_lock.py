"""One training run per work dir: ``<work_dir>/train.lock`` names the process that trains there.

Two runs in one work dir overwrite each other's checkpoints and ``last_checkpoint`` (e.g. a ``--resume`` started
while the old run's workers still train). Rank 0 creates the lock file before the run touches the work dir and
removes it when the process ends (normally, on an exception, on SIGTERM or SIGHUP). A process killed outright
(SIGKILL, the OOM killer, a crash of the machine) leaves its lock behind: on the same host it is recognised as stale
(that PID no longer runs, or runs another program: its start time differs) and taken over; a lock from another host
cannot be checked from here and has to be deleted by hand.
"""
import atexit
import json
import os
import os.path as osp
import signal
import socket
import time

from .resume import WorkDirError

LOCK_FILE = 'train.lock'
# Signals that end a run whose lock should go with it (SIGINT raises KeyboardInterrupt: atexit covers it).
RELEASE_ON = (signal.SIGTERM, signal.SIGHUP)


def _process_stat(pid):
    """State letter and start time (clock ticks since boot) of process ``pid`` from ``/proc`` (Linux), or None."""
    try:
        with open(f'/proc/{pid}/stat', encoding='utf-8') as f:
            # The command name (2nd field) may hold spaces and parentheses; state and start time are fields 3 and 22.
            fields = f.read().rsplit(')', 1)[1].split()
        return fields[0], int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def _process_start(pid):
    """Start time of process ``pid`` in clock ticks since boot, or None when unknown."""
    stat = _process_stat(pid)
    return None if stat is None else stat[1]


def _running(holder):
    """Whether the process a lock names may still run (True when it cannot be told: another host)."""
    if holder['host'] != socket.gethostname():
        return True
    try:
        os.kill(holder['pid'], 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        pass
    stat = _process_stat(holder['pid'])
    if stat is None:
        return True
    state, start = stat
    # A zombie (killed, not yet reaped) no longer runs; another start time is another process with that PID.
    return state not in 'ZX' and holder.get('process_start') in (None, start)


class WorkDirLock:
    """The lock file of one work dir, held by this process.

    Args:
        work_dir (str): The work dir (created when missing).
    """

    def __init__(self, work_dir):
        self.work_dir = work_dir
        self.path = osp.join(work_dir, LOCK_FILE)
        self._owner = dict(pid=os.getpid(), host=socket.gethostname(), process_start=_process_start(os.getpid()),
                           started=time.strftime('%Y-%m-%d %H:%M:%S'))

    def acquire(self):
        """Create the lock file, or take over a stale one; release it when the process ends.

        Returns:
            str | None: A line for the run's log when a stale lock was taken over.

        Raises:
            WorkDirError: If another run holds the work dir, or the lock file cannot be read.
        """
        os.makedirs(self.work_dir, exist_ok=True)
        note = None
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = self._holder()
            if _running(holder):
                raise WorkDirError(
                    f'{self.work_dir} is in use by another training run: PID {holder["pid"]} on host '
                    f'{holder["host"]} (started {holder.get("started", "?")}) holds {self.path}. Wait for it to end '
                    'or stop it; if no run trains there any more, delete the lock file.') from None
            os.remove(self.path)
            note = (f'took over the stale lock {self.path}: PID {holder["pid"]} on {holder["host"]} (started '
                    f'{holder.get("started", "?")}) no longer runs')
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                raise WorkDirError(f'{self.work_dir}: another run took {self.path} at the same time') from None
        with os.fdopen(fd, 'w', encoding='utf-8') as f:
            json.dump(self._owner, f)
        atexit.register(self.release)
        for sig in RELEASE_ON:
            # Only where the signal would end the process anyway: a handler set by someone else stays.
            if signal.getsignal(sig) == signal.SIG_DFL:
                signal.signal(sig, self._release_and_die)
        return note

    def _holder(self):
        """The owner recorded in an existing lock file."""
        try:
            with open(self.path, encoding='utf-8') as f:
                holder = json.load(f)
            if not isinstance(holder, dict) or not isinstance(holder.get('pid'), int) or 'host' not in holder:
                raise ValueError('no pid and host in it')
        except (OSError, ValueError) as err:
            raise WorkDirError(f'{self.path} exists but cannot be read ({err}): another run may be starting in '
                               f'{self.work_dir}; if none is, delete the lock file') from None
        return holder

    def release(self):
        """Remove the lock file if this process holds it (a forked child, e.g. a data worker, leaves it)."""
        if os.getpid() != self._owner['pid']:
            return
        try:
            with open(self.path, encoding='utf-8') as f:
                mine = json.load(f) == self._owner
        except (OSError, ValueError):
            return
        if mine:
            os.remove(self.path)

    def _release_and_die(self, signum, frame):
        """Signal handler: release the lock, then end the process as the signal's default action does."""
        self.release()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

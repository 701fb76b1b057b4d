"""Entry point of the workers ``tools/dist.sh`` starts: a worker exits when its launcher dies.

torchrun starts every worker in a session of its own (``start_new_session=True``), so a signal sent to the
launcher's process group never reaches the workers. On SIGTERM, SIGINT, SIGHUP or SIGQUIT torchrun forwards the
signal to each worker's process group and waits for them, but a launcher killed outright (SIGKILL, the OOM killer)
forwards nothing and the workers would go on training. ``tools/dist.sh`` therefore starts each worker as
``python -m projects.earthmind.engine.worker_entry SCRIPT ARGS...`` (torchrun's ``--module``): this asks the kernel
to send the worker SIGTERM when its parent dies (Linux ``prctl(PR_SET_PDEATHSIG)``), then replaces itself with
``python SCRIPT ARGS...`` (same PID; the request survives ``exec``). ``EARTHMIND_LAUNCHER_PID``, exported by
``tools/dist.sh`` (whose PID torchrun keeps, through ``exec``), closes the race of a launcher that dies before the
request is made. Elsewhere than Linux the script is run unchanged.
"""
import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
LAUNCHER_PID_ENV = 'EARTHMIND_LAUNCHER_PID'


def _ancestors(pid):
    """PIDs of the parent, grandparent, ... of ``pid`` (from ``/proc``), nearest first."""
    found = []
    while pid > 1:
        try:
            with open(f'/proc/{pid}/stat') as f:
                # The command name (2nd field) may hold spaces and parentheses: the parent PID follows the last ')'.
                pid = int(f.read().rsplit(')', 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
        found.append(pid)
    return found


def exit_with_parent(launcher_pid=None, sig=signal.SIGTERM):
    """Have the kernel send ``sig`` to this process when its parent dies (Linux only; a no-op elsewhere).

    Args:
        launcher_pid (int, optional): The launcher's PID. When it is no longer an ancestor of this process once the
            request is in place, the launcher died first (no signal will come) and the process exits at once.
        sig (signal.Signals): The signal to receive.

    Raises:
        OSError: If the kernel refuses the request.
        SystemExit: If the launcher is already gone.
    """
    if not sys.platform.startswith('linux'):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f'prctl(PR_SET_PDEATHSIG): {os.strerror(errno)}')
    if launcher_pid is not None and launcher_pid not in _ancestors(os.getpid()):
        raise SystemExit(f'worker {os.getpid()}: its launcher (PID {launcher_pid}) is gone; not starting')


def main(argv=None):
    """Tie this process to its parent, then ``exec`` the Python script ``argv[0]`` with the arguments that follow."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        raise SystemExit('usage: python -m projects.earthmind.engine.worker_entry SCRIPT [ARGS...]')
    launcher_pid = os.environ.get(LAUNCHER_PID_ENV)
    exit_with_parent(int(launcher_pid) if launcher_pid else None)
    # Unbuffered, as torchrun runs its Python workers (``python -u``).
    os.execv(sys.executable, [sys.executable, '-u', *argv])


if __name__ == '__main__':
    main()

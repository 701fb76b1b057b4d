"""One training run per work dir: ``train.lock``.

Locks are taken in child processes: taking one sets exit and signal handlers in the process that holds it.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from projects.earthmind.engine.resume import WorkDirError
from projects.earthmind.engine.work_dir_lock import LOCK_FILE, WorkDirLock, _process_start, _process_stat

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _hold(work_dir, then=''):
    """Run a child that takes the lock of ``work_dir``, prints the take-over note, then runs ``then``."""
    code = textwrap.dedent('''
        import os, signal, sys
        from projects.earthmind.engine.work_dir_lock import WorkDirLock
        print(WorkDirLock(sys.argv[1]).acquire(), flush=True)
    ''') + textwrap.dedent(then)
    return subprocess.run([sys.executable, '-c', code, str(work_dir)], cwd=REPO_ROOT, capture_output=True, text=True)


def _write_lock(work_dir, **owner):
    os.makedirs(work_dir, exist_ok=True)
    holder = dict(pid=os.getpid(), host=socket.gethostname(), process_start=_process_start(os.getpid()),
                  started='2025-01-02 03:04:05')
    holder.update(owner)
    with open(os.path.join(work_dir, LOCK_FILE), 'w') as f:
        json.dump(holder, f)


def _dead_pid():
    child = subprocess.Popen(['true'])
    child.wait()
    return child.pid


def test_a_running_holder_is_named_and_its_lock_kept(tmp_path):
    _write_lock(tmp_path)  # this test process holds it
    with pytest.raises(WorkDirError) as err:
        WorkDirLock(str(tmp_path)).acquire()
    assert str(err.value).startswith(f'{tmp_path} is in use by another training run: PID {os.getpid()} on host '
                                     f'{socket.gethostname()} (started 2025-01-02 03:04:05) holds '
                                     f'{tmp_path / LOCK_FILE}.')
    assert (tmp_path / LOCK_FILE).exists()


def test_a_lock_of_another_host_is_not_taken_over(tmp_path):
    _write_lock(tmp_path, pid=_dead_pid(), host='elsewhere')
    with pytest.raises(WorkDirError, match='on host elsewhere'):
        WorkDirLock(str(tmp_path)).acquire()


def test_an_unreadable_lock_is_refused(tmp_path):
    (tmp_path / LOCK_FILE).write_text('')
    with pytest.raises(WorkDirError, match=f'{tmp_path / LOCK_FILE} exists but cannot be read'):
        WorkDirLock(str(tmp_path)).acquire()


def test_stale_locks_are_taken_over_with_a_note(tmp_path):
    dead = _dead_pid()
    _write_lock(tmp_path, pid=dead)
    result = _hold(tmp_path, then='print(open(os.path.join(sys.argv[1], "train.lock")).read())')
    assert result.returncode == 0, result.stderr
    note, lock = result.stdout.splitlines()
    assert note == (f'took over the stale lock {tmp_path / LOCK_FILE}: PID {dead} on {socket.gethostname()} '
                    '(started 2025-01-02 03:04:05) no longer runs')
    assert json.loads(lock)['pid'] != dead
    # A PID in use again, by another process (a container restarted): its start time tells them apart.
    _write_lock(tmp_path, process_start=1)
    result = _hold(tmp_path)
    assert result.returncode == 0 and result.stdout.startswith('took over the stale lock'), result.stderr


def test_a_killed_holder_not_yet_reaped_is_stale(tmp_path):
    zombie = subprocess.Popen(['true'])  # not waited for: a zombie once it exits
    _write_lock(tmp_path, pid=zombie.pid, process_start=_process_start(zombie.pid))
    deadline = time.time() + 60
    while _process_stat(zombie.pid)[0] != 'Z' and time.time() < deadline:
        time.sleep(0.01)
    result = _hold(tmp_path)
    zombie.wait()
    assert result.returncode == 0 and result.stdout.startswith('took over the stale lock'), result.stderr


@pytest.mark.parametrize('then, returncode', [
    ('', 0),
    ('raise RuntimeError("training failed")', 1),
    ('os.kill(os.getpid(), signal.SIGTERM)', -signal.SIGTERM),
], ids=['end', 'exception', 'SIGTERM'])
def test_the_lock_goes_when_the_run_ends(tmp_path, then, returncode):
    result = _hold(tmp_path / 'run', then)
    assert result.returncode == returncode, result.stderr
    assert os.listdir(tmp_path / 'run') == []


def test_forked_children_leave_the_lock_to_the_run(tmp_path):
    result = _hold(tmp_path, '''
        child = os.fork()
        if child == 0:
            sys.exit(0)  # runs the exit handlers inherited from the run, as a data worker could
        os.waitpid(child, 0)
        print(os.path.exists(os.path.join(sys.argv[1], "train.lock")))
    ''')
    assert result.stdout.splitlines() == ['None', 'True'], result.stderr
    assert not (tmp_path / LOCK_FILE).exists()

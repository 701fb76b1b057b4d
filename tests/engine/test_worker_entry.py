"""Workers started through ``worker_entry`` (as ``tools/dist.sh`` starts them) exit when their launcher dies."""
import os
import os.path as osp
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from tests.tools.processes import process_id, running, wait_until_gone

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

pytestmark = pytest.mark.skipif(not sys.platform.startswith('linux'), reason='parent-death signals are Linux only')

# A stand-in launcher: it starts one worker through worker_entry, as torchrun does under tools/dist.sh, and waits.
LAUNCHER = textwrap.dedent('''
    import os, subprocess, sys
    os.environ['EARTHMIND_LAUNCHER_PID'] = str(os.getpid())
    subprocess.Popen([sys.executable, '-m', 'projects.earthmind.engine.worker_entry', sys.argv[1], sys.argv[2]],
                     start_new_session=True).wait()
''')
WORKER = textwrap.dedent('''
    import os, sys, time
    with open(sys.argv[1] + '.tmp', 'w') as f:
        f.write(str(os.getpid()))
    os.rename(sys.argv[1] + '.tmp', sys.argv[1])
    time.sleep(3600)
''')


def test_a_worker_exits_when_its_launcher_is_killed(tmp_path):
    (tmp_path / 'worker.py').write_text(WORKER)
    pid_file = tmp_path / 'worker.pid'
    launcher = subprocess.Popen([sys.executable, '-c', LAUNCHER, str(tmp_path / 'worker.py'), str(pid_file)],
                                cwd=REPO_ROOT, start_new_session=True)
    worker = None
    try:
        while not pid_file.exists():
            assert launcher.poll() is None, 'the stand-in launcher exited before its worker started'
            time.sleep(0.05)
        worker = process_id(int(pid_file.read_text()))
        assert running(worker)
        # Its own session, as torchrun's workers: a kill of the launcher's process group does not reach it.
        assert os.getsid(worker[0]) == worker[0]
        os.killpg(launcher.pid, signal.SIGKILL)
        launcher.wait()
        assert not wait_until_gone([worker]), f'worker {worker[0]} still runs after its launcher was killed'
    finally:
        if worker is not None and running(worker):
            os.kill(worker[0], signal.SIGKILL)


def test_a_worker_whose_launcher_is_already_gone_does_not_start(tmp_path):
    (tmp_path / 'worker.py').write_text(WORKER)
    pid_file = tmp_path / 'worker.pid'
    # A PID that is no ancestor of the worker: its launcher died before the worker could tie itself to it.
    gone = subprocess.Popen([sys.executable, '-c', 'pass'])
    gone.wait()
    result = subprocess.run([sys.executable, '-m', 'projects.earthmind.engine.worker_entry',
                             str(tmp_path / 'worker.py'), str(pid_file)],
                            env=dict(os.environ, EARTHMIND_LAUNCHER_PID=str(gone.pid)), cwd=REPO_ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 1 and not pid_file.exists()
    assert f'its launcher (PID {gone.pid}) is gone; not starting' in result.stderr

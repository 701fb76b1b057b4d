"""The demo process keeps every temporary file in its own folder and removes it when it exits."""
import os
import subprocess
import sys
import textwrap

from tests.tools.train_runs import REPO_ROOT

SCRIPT = textwrap.dedent('''
    import os, tempfile
    from projects.earthmind.demo.demo_environment import prepare_environment
    folder = prepare_environment()
    # What Gradio's client does for a download: a scratch folder under the temporary directory.
    scratch = tempfile.mkdtemp()
    open(os.path.join(scratch, 'answer.tif'), 'w').close()
    print(folder, scratch, os.environ['GRADIO_TEMP_DIR'], os.environ['HF_HUB_OFFLINE'])
''')


def test_temporary_files_stay_in_the_demo_folder_which_is_removed_at_exit(tmp_path):
    env = dict(os.environ, TMPDIR=str(tmp_path), PYTHONPATH=REPO_ROOT)
    run = subprocess.run([sys.executable, '-c', SCRIPT], capture_output=True, text=True, env=env, cwd=REPO_ROOT)
    assert run.returncode == 0, run.stderr
    folder, scratch, gradio_dir, offline = run.stdout.split()
    assert folder.startswith(str(tmp_path)) and scratch.startswith(folder + os.sep) and gradio_dir == folder
    assert offline == '1'
    assert os.listdir(tmp_path) == [], 'files left behind after the demo exited'

"""The demo's process settings, made before Gradio is imported: no network, uploads in a private temporary folder.

Gradio reads ``GRADIO_TEMP_DIR`` when it is imported, so :func:`prepare_environment` runs first; the folder (uploads,
answer files) is deleted when the process exits, also on SIGTERM.
"""
import atexit
import os
import shutil
import signal
import sys
import tempfile


def _exit_on_sigterm(signum, frame):
    sys.exit(128 + signum)  # runs the atexit clean-up, which a plain SIGTERM would skip


def prepare_environment():
    """Create the demo's temporary folder and set the environment for an offline Gradio server.

    Sets ``GRADIO_TEMP_DIR`` and the process's temporary directory (``tempfile.tempdir``: Gradio's client and any
    library writing temporary files) to the new folder, ``GRADIO_ANALYTICS_ENABLED=False`` (no analytics or version
    check) and ``HF_HUB_OFFLINE=1``; registers the folder's removal at exit.

    Returns:
        str: The temporary folder.
    """
    folder = tempfile.mkdtemp(prefix='earthmind_demo_')
    os.environ['GRADIO_TEMP_DIR'] = folder
    tempfile.tempdir = folder
    os.environ['GRADIO_ANALYTICS_ENABLED'] = 'False'
    os.environ['HF_HUB_OFFLINE'] = '1'
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    return folder

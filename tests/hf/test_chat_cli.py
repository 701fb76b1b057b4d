"""tools/chat.py: one question, multi-turn from stdin, windows over a scene."""
import importlib.util
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from .conftest import QUESTION, REPO_ROOT, isolated_env

CHAT = osp.join(REPO_ROOT, 'tools', 'chat.py')


def run_chat(args, tmp_path, stdin=''):
    env = isolated_env(tmp_path)
    return subprocess.run([sys.executable, CHAT, *args], input=stdin, cwd=tmp_path, env=env, capture_output=True,
                          text=True)


def test_multi_turn_and_windows(cls_export, rgb_geotiff, tmp_path):
    folder, exported = cls_export[2], cls_export[3]
    first = exported.predict_forward(image=rgb_geotiff, text=QUESTION, max_new_tokens=4)['text']
    second = exported.predict_forward(image=rgb_geotiff, text='And the colour?', history=[(QUESTION, first)],
                                      max_new_tokens=4)['text']
    proc = run_chat([folder, rgb_geotiff, '--max-new-tokens', '4'], tmp_path, stdin=f'{QUESTION}\nAnd the colour?\n')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout == f'{first}\n{second}\n'

    def window_answer(window):
        return exported.predict_forward(image=rgb_geotiff, text=QUESTION, window=window, max_new_tokens=4)['text']

    proc = run_chat([folder, rgb_geotiff, '--question', QUESTION, '--tile-size', '45', '--max-new-tokens', '4'],
                    tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    windows = [(0, 0, 45, 45), (45, 0, 45, 45), (0, 25, 45, 45), (45, 25, 45, 45)]  # the last row ends at the edge
    assert proc.stdout == ''.join(f'[window {",".join(map(str, w))}] {window_answer(w)}\n' for w in windows)
    proc = run_chat([folder, rgb_geotiff, '--question', QUESTION, '--window', '40,0,50,70', '--max-new-tokens', '4'],
                    tmp_path)
    assert proc.returncode == 0 and proc.stdout == f'[window 40,0,50,70] {window_answer((40, 0, 50, 70))}\n'
    proc = run_chat([folder, rgb_geotiff, '--question', QUESTION, '--window', '80,0,50,70'], tmp_path)
    assert proc.returncode != 0 and 'not inside' in proc.stderr


class _ModelWithMask:
    """Stands in for a model with a mask decoder (issue 4): returns one mask per question, at the window's size."""

    def __init__(self, model):
        self.model = model

    def predict_forward(self, **kwargs):
        result = self.model.predict_forward(**kwargs)
        height, width = result['size']
        mask = np.zeros((height, width), dtype=np.uint8)
        mask[:height // 2] = 1
        return dict(result, masks=[mask])


def test_masks_are_written_with_the_window_georeference(cls_export, rgb_geotiff, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location('chat_tool', CHAT)
    chat = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(chat)
    args = chat.parse_args([cls_export[2], rgb_geotiff, '--out-dir', str(tmp_path), '--max-new-tokens', '2'])
    window = (40, 10, 50, 60)
    chat.answer(_ModelWithMask(cls_export[3]), args, window, QUESTION, [])
    written = capsys.readouterr().out
    tif = tmp_path / 'rgb_c40_r10_mask0.tif'
    assert f'wrote {tif}' in written and (tmp_path / 'rgb_c40_r10_mask0.png').is_file()
    with rasterio.open(rgb_geotiff) as src, rasterio.open(tif) as out:
        assert out.crs == src.crs and out.transform == src.window_transform(Window(*window))
        assert (out.width, out.height) == (50, 60) and out.nodata == 255


def test_a_folder_that_is_no_export_is_named_at_once(rgb_geotiff, tmp_path):
    spec = importlib.util.spec_from_file_location('chat_tool', CHAT)
    chat = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(chat)
    with pytest.raises(SystemExit, match='nothing is not an exported model folder .no config.json'):
        chat.main([str(tmp_path / 'nothing'), rgb_geotiff, '--question', QUESTION])

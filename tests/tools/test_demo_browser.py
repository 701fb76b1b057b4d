"""The web demo (``tools/demo.py``) driven by a real browser (headless Chromium through Selenium).

The demo serves the session's trained referring-segmentation model (tiny EarthMind + tiny SAM2, shared with
``test_refseg_learning.py``), exported to a Hugging Face folder. The browser uploads one of its sample GeoTIFFs, asks
it to segment a square and checks the answer, the mask overlay and the downloaded mask GeoTIFF against the exported
model's own ``predict_forward``; bad uploads must get an error in the page. ``EARTHMIND_WRITE_SCREENSHOTS=1`` writes
the screenshot of the answer to ``docs/images/demo_segment.png``.
"""
import io
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
import rasterio
from PIL import Image

from projects.earthmind.engine.config_file import load_config
from projects.earthmind.hf.export import export_to_hf
from tests.tools.train_runs import REPO_ROOT, free_port

pytestmark = pytest.mark.slow

RECIPE = 'earthmind_tiny_sam2_1xb8_120e_sample_refseg'
MAX_PIXELS = 10000
POLL_S = 300  # a poll limit for page changes, not a time budget: CPU answers take about a second
SCREENSHOT = osp.join(REPO_ROOT, 'docs', 'images', 'demo_segment.png')


def _browser_tools():
    selenium = pytest.importorskip('selenium', reason='selenium is not installed (pip install -r requirements.txt)')
    chromium = shutil.which('chromium') or shutil.which('chromium-browser') or shutil.which('google-chrome')
    driver = shutil.which('chromedriver')
    if chromium is None or driver is None:
        pytest.skip('chromium and chromedriver are needed (apt-get install -y chromium chromium-driver)')
    return selenium, chromium, driver


@pytest.fixture(scope='module', autouse=True)
def _browser_present():
    """Skip before anything is trained when the browser tools are missing."""
    _browser_tools()


@pytest.fixture(scope='module')
def exported(trained_recipe, tmp_path_factory):
    """The trained refseg model exported, a sample GeoTIFF and the question its training record asks."""
    config, checkpoint = trained_recipe(RECIPE)
    workspace = trained_recipe.workspace
    folder = str(tmp_path_factory.mktemp('demo_export') / 'hf')
    cwd = os.getcwd()
    os.chdir(workspace)  # the config names its tokenizer relative to the workspace
    try:
        export_to_hf(load_config(config), checkpoint, folder)
    finally:
        os.chdir(cwd)
    with open(osp.join(workspace, 'data', 'sample', 'refseg_train.json')) as f:
        record = json.load(f)[0]
    image = osp.join(workspace, 'data', 'sample', record['image'])
    return folder, image, record['conversations'][0]['value'].replace('<image>\n', '')


@pytest.fixture(scope='module')
def server(exported, tmp_path_factory):
    """``tools/demo.py`` on a free port (its temporary files under a private TMPDIR); yields its URL and TMPDIR."""
    folder = exported[0]
    tmp = tmp_path_factory.mktemp('demo_tmp')
    port = free_port()
    env = dict(os.environ, TMPDIR=str(tmp), PYTHONUNBUFFERED='1')
    env.pop('PYTHONPATH', None)
    log = open(tmp_path_factory.mktemp('demo_log') / 'demo.log', 'w+')
    proc = subprocess.Popen([sys.executable, osp.join(REPO_ROOT, 'tools', 'demo.py'), folder, '--port', str(port),
                             '--max-pixels', str(MAX_PIXELS), '--max-upload-mb', '1'],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f'http://127.0.0.1:{port}/'
    try:
        _wait_for_server(url, proc, log)
        yield url, tmp
    finally:
        proc.terminate()
        proc.wait()
        log.close()
    assert not os.listdir(tmp), f'the demo left files behind: {os.listdir(tmp)}'


def _wait_for_server(url, proc, log):
    for _ in range(POLL_S * 2):
        if proc.poll() is not None:
            log.seek(0)
            pytest.fail(f'tools/demo.py exited with {proc.returncode}:\n{log.read()[-4000:]}')
        try:
            urllib.request.urlopen(url, timeout=5)
            return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f'tools/demo.py did not serve {url}')


@pytest.fixture(scope='module')
def browser():
    selenium, chromium, driver_path = _browser_tools()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage', '--window-size=1400,1300',
                 '--disable-gpu'):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver, condition, what):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait
    try:
        return WebDriverWait(driver, POLL_S, poll_frequency=0.2).until(lambda d: condition(d))
    except TimeoutException:
        pytest.fail(f'the page never showed {what}; status: {_text(driver, "#status")!r}')


def _element(driver, css):
    from selenium.webdriver.common.by import By
    found = driver.find_elements(By.CSS_SELECTOR, css)
    return found[0] if found else None


def _text(driver, css):
    element = _element(driver, css)
    return element.text if element is not None else ''


def _open(driver, url):
    driver.get(url)
    _wait(driver, lambda d: _element(d, '#files input[type=file]') is not None, 'the upload field')


def _upload_and_load(driver, path):
    _element(driver, '#files input[type=file]').send_keys(path)
    name = osp.basename(path)
    _wait(driver, lambda d: _element(d, f'#files td.filename[aria-label="{name}"]'), f'the uploaded {name}')
    _element(driver, '#load').click()


def _image(driver, css):
    """The pixels of the page's ``<img>`` at ``css`` (fetched from the demo server)."""
    element = _wait(driver, lambda d: _element(d, f'{css} img'), f'an image in {css}')
    with urllib.request.urlopen(element.get_attribute('src')) as response:
        return np.asarray(Image.open(io.BytesIO(response.read())).convert('RGB'))


def test_demo_segments_an_uploaded_geotiff_and_offers_the_mask_geotiff(server, browser, exported, tmp_path):
    from transformers import AutoModel
    folder, image, question = exported
    url, _ = server
    model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    expected = model.predict_forward(image=image, text=question)
    assert expected['masks'], 'the trained model should write [SEG] for its training question'

    _open(browser, url)
    loaded = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    outside = [name for name in loaded if not name.startswith(url) and not name.startswith('data:')]
    assert loaded and not outside, f'the page fetched from outside the demo server (fonts, CDN): {outside}'
    assert 'fonts.googleapis' not in browser.page_source and 'cdnjs' not in browser.page_source
    _upload_and_load(browser, image)
    _wait(browser, lambda d: 'CRS EPSG:32631' in _text(d, '#status'), 'the image description')
    view = _image(browser, '#view')
    with rasterio.open(image) as src:
        assert view.shape == (src.height, src.width, 3)
        assert np.array_equal(view, src.read().transpose(1, 2, 0)), 'an RGB product is shown as loaded'
        crs = src.crs

    _element(browser, '#question textarea').send_keys(question)
    _element(browser, '#ask').click()
    answer = _wait(browser, lambda d: _element(d, '#answer textarea').get_attribute('value'), 'an answer')
    assert answer == expected['text'] and '[SEG]' in answer
    assert answer in _text(browser, '#chat')
    _wait(browser, lambda d: 'mask(s)' in _text(d, '#status'), 'the answer summary')
    assert f'{len(expected["masks"])} mask(s)' in _text(browser, '#status')

    overlay = _image(browser, '#overlay')
    changed = np.any(overlay != view, axis=-1)
    mask = np.any(expected['masks'], axis=0)
    assert mask.any() and np.array_equal(changed, mask & np.any(view != (255, 0, 0), axis=-1)), \
        'the overlay must differ from the view exactly where the masks are'

    links = _wait(browser, lambda d: [a.get_attribute('href') for a in
                                      d.find_elements('css selector', '#downloads a[href]')], 'download links')
    tifs = [href for href in links if href.split('?')[0].endswith('.tif')]
    assert len(tifs) == len(expected['masks'])
    with urllib.request.urlopen(tifs[0]) as response:
        (tmp_path / 'mask.tif').write_bytes(response.read())
    with rasterio.open(tmp_path / 'mask.tif') as downloaded:
        assert downloaded.crs == crs
        with rasterio.open(image) as src:
            assert downloaded.transform == src.transform
        assert np.array_equal(downloaded.read(1).astype(bool), expected['masks'][0])

    browser.save_screenshot(str(tmp_path / 'demo_segment.png'))
    if os.environ.get('EARTHMIND_WRITE_SCREENSHOTS') == '1':
        os.makedirs(osp.dirname(SCREENSHOT), exist_ok=True)
        browser.save_screenshot(SCREENSHOT)

    # A region prompt: two clicks on the view draw its box, and the next question's <vp> is that region.
    from selenium.webdriver.common.action_chains import ActionChains
    shown = _element(browser, '#view img')
    width, height = shown.size['width'], shown.size['height']
    for dx, dy in ((-0.3, -0.3), (0.1, 0.2)):
        ActionChains(browser).move_to_element_with_offset(shown, int(dx * width), int(dy * height)).click().perform()
        _wait(browser, lambda d: 'region' in _text(d, '#status'), 'the region corner')
    box = [float(v) for v in _wait(browser, lambda d: _element(d, '#region textarea').get_attribute('value'),
                                   'the region box').split(',')]
    assert 0 <= box[0] < box[2] <= view.shape[1] and 0 <= box[1] < box[3] <= view.shape[0]
    outlined = _image(browser, '#view')
    assert np.any(outlined[int(box[1])] != view[int(box[1])]), 'the region is drawn on the view'
    region_question = 'What is in the region <vp>?'
    question_box = _element(browser, '#question textarea')
    question_box.clear()
    question_box.send_keys(region_question)
    _element(browser, '#ask').click()
    expected = model.predict_forward(image=image, text=region_question, history=[(question, answer)],
                                     region_prompts=[box])
    _wait(browser, lambda d: _element(d, '#answer textarea').get_attribute('value') != answer, 'the second answer')
    assert _element(browser, '#answer textarea').get_attribute('value') == expected['text']


def test_bad_uploads_get_an_error_in_the_page(server, browser, tmp_path):
    url, _ = server
    not_a_raster = tmp_path / 'notes.tif'
    not_a_raster.write_text('not a raster')
    _open(browser, url)
    _upload_and_load(browser, str(not_a_raster))
    _wait(browser, lambda d: 'Error:' in _text(d, '#status'), 'an error')
    assert 'Cannot read raster' in _text(browser, '#status') and 'notes.tif' in _text(browser, '#status')
    assert 'Traceback' not in browser.page_source

    too_large = tmp_path / 'large.png'
    Image.fromarray(np.zeros((120, 100, 3), dtype=np.uint8)).save(too_large)
    _open(browser, url)
    _upload_and_load(browser, str(too_large))
    _wait(browser, lambda d: 'Error:' in _text(d, '#status'), 'an error')
    assert f'120 px = 12000 pixels; this demo takes at most {MAX_PIXELS}' in _text(browser, '#status')

    over_limit = tmp_path / 'over_limit.png'  # the server caps uploads at --max-upload-mb 1
    over_limit.write_bytes(np.random.default_rng(0).bytes(2 * 1024 * 1024))
    _open(browser, url)
    _element(browser, '#files input[type=file]').send_keys(str(over_limit))
    _wait(browser, lambda d: 'exceeds the maximum allowed size' in d.find_element('tag name', 'body').text,
          'the upload size error')

    _open(browser, url)
    _element(browser, '#question textarea').send_keys('What is shown?')
    _element(browser, '#ask').click()
    _wait(browser, lambda d: 'Error:' in _text(d, '#status'), 'an error')
    assert 'upload an image' in _text(browser, '#status')

"""The Gradio app of the demo: upload, the model's view, chat, region prompts and the answer's masks and boxes.

Every answer comes from the exported model's ``predict_forward`` (its processor and model core); the app only
resolves uploads (:mod:`demo_inputs`), draws (:mod:`demo_rendering`) and writes downloads (:mod:`demo_downloads`).
Import it after :func:`prepare_environment` (Gradio reads its settings when imported).
"""
import html
import os
import tempfile

import gradio as gr
import torch
from rasterio.errors import RasterioError
from starlette.middleware import Middleware
from transformers import AutoModel

from projects.earthmind.datasets.sensors import SENSORS
from projects.earthmind.inference.scene_predictor import is_exported_folder
from projects.earthmind.utils.special_tokens import VP_TOKEN

from .demo_downloads import write_downloads
from .demo_inputs import DETECT, open_upload
from .demo_rendering import draw_answer, draw_region, model_views
from .offline_page import OfflinePage

# Errors of bad inputs, shown in the page; anything else is a bug and shows Gradio's generic error.
INPUT_ERRORS = (ValueError, KeyError, OSError, RasterioError)
EXAMPLE_PROMPTS = (
    ('classify', 'Which land-cover class does this image show? Answer with one of: water, forest, desert, urban.'),
    ('caption', 'Describe the image in one sentence.'),
    ('vqa', 'Is there any water in the image?'),
    ('ground', 'Where is the red square? Answer with its box.'),
    ('segment', 'Please segment the red square.'),
    ('region', f'What is in the region {VP_TOKEN}?'),
)
# System fonts only: Gradio's default theme would fetch its font from Google.
THEME = gr.themes.Default(font=['ui-sans-serif', 'system-ui', 'sans-serif'],
                          font_mono=['ui-monospace', 'Consolas', 'monospace'])
# Small rasters are shown enlarged, pixels kept sharp (clicks are mapped back to image pixels by Gradio).
CSS = '#view img, #overlay img {min-height: 320px; object-fit: contain; image-rendering: pixelated;}'


def load_model(folder, device='cpu', dtype='float32'):
    """``AutoModel.from_pretrained(folder, trust_remote_code=True)`` on ``device``, in eval mode.

    Raises:
        SystemExit: Naming the folder when it is not an exported model or does not load.
    """
    if not is_exported_folder(folder):
        raise SystemExit(f'demo: {folder} is not an exported model folder (no config.json; write one with '
                         'tools/convert_to_hf.py)')
    try:
        model = AutoModel.from_pretrained(folder, trust_remote_code=True, torch_dtype=getattr(torch, dtype))
        model.processor  # noqa: B018 - loads the processor now, so a broken folder fails here
        return model.to(device).eval()
    except (OSError, ValueError, KeyError, RuntimeError, ImportError) as err:
        raise SystemExit(f'demo: cannot load the model in {folder}: {type(err).__name__}: {err}') from err


def _parse_region(text):
    """``'x1, y1, x2, y2'`` -> a list of 4 floats; None for empty text."""
    if not (text or '').strip():
        return None
    try:
        values = [float(v) for v in text.replace('[', '').replace(']', '').split(',')]
    except ValueError:
        values = []
    if len(values) != 4:
        raise ValueError(f'the region must be x1, y1, x2, y2 in pixels, got {text!r}')
    return values


def _status(text, error=False):
    if error:
        gr.Warning(text)
        return f'**Error:** {html.escape(text, quote=False)}'
    return html.escape(text, quote=False)


class DemoApp:
    """The demo's handlers around one exported model.

    Args:
        model (EarthMindForConditionalGeneration): The exported model (``predict_forward``, ``processor``).
        work_dir (str): Folder for per-upload files (inside the demo's temporary folder).
        max_pixels (int | None): Largest accepted image (width times height).
        max_new_tokens (int | None): Generation limit (the exported default when None).
    """

    def __init__(self, model, work_dir, max_pixels=None, max_new_tokens=None):
        self.model, self.work_dir = model, work_dir
        self.max_pixels, self.max_new_tokens = max_pixels, max_new_tokens

    def load(self, files, sensor, date, second, second_date, sar, sar_sensor):
        """Resolve an upload and show the model's view; resets the conversation."""
        empty = (None, None, gr.update(choices=[], value=None), [], None, '', None, '')
        try:
            folder = tempfile.mkdtemp(dir=self.work_dir)
            upload = open_upload(files, folder, sensor, date, second, second_date, sar, sar_sensor, self.max_pixels)
            views = model_views(self.model.processor, upload)
        except INPUT_ERRORS as err:
            return (*empty, _status(str(err), error=True))
        label = next(iter(views))
        state = dict(input=upload, views=views, view=label, history=[], regions=[], corner=None, folder=folder,
                     turn=0)
        return (state, views[label], gr.update(choices=list(views), value=label), [], None, '', None, '',
                _status(upload.describe()))

    def show_view(self, label, region_text, state):
        """Show another date or band group of the model's view."""
        if state is None or label not in state['views']:
            return None
        state['view'] = label
        try:
            region = _parse_region(region_text)
        except ValueError:
            region = None
        return draw_region(state['views'][label], region)

    def click(self, state, event: gr.SelectData):
        """Two clicks on the view draw the region prompt's box (opposite corners)."""
        if state is None:
            return None, '', _status('upload an image first', error=True)
        x, y = (int(v) for v in event.index)
        view = state['views'][state['view']]
        if state['corner'] is None:
            state['corner'] = (x, y)
            return draw_region(view, None), '', _status(f'region corner at ({x}, {y}): click the opposite corner')
        (x0, y0), state['corner'] = state['corner'], None
        box = [min(x0, x), min(y0, y), max(x0, x) + 1, max(y0, y) + 1]
        return draw_region(view, box), ', '.join(map(str, box)), _status(
            f'region {box}: ask about it with {VP_TOKEN} in the question')

    def ask(self, question, region_text, state, chat):
        """Answer a question about the loaded image, with the conversation so far."""
        chat = list(chat or [])
        question = (question or '').strip()
        try:
            if state is None:
                raise ValueError('upload an image and press "Show image" first')
            if not question:
                raise ValueError('type a question')
            count = question.count(VP_TOKEN)
            region = _parse_region(region_text) if count else None
            if count and region is None:
                raise ValueError(f'{VP_TOKEN} needs a region: click two opposite corners on the image')
            regions = state['regions'] + [region] * count
            inputs = state['input'].processor_inputs()
            if regions:
                inputs['region_prompts'] = regions
            result = self.model.predict_forward(text=question, history=state['history'],
                                                max_new_tokens=self.max_new_tokens, **inputs)
            overlay = draw_answer(state['views'][state['view']], result, region)
            state['turn'] += 1
            downloads = write_downloads(os.path.join(state['folder'], f'answer{state["turn"]}'),
                                        f'answer{state["turn"]}', result)
        except INPUT_ERRORS as err:
            return state, chat, gr.update(), gr.update(), gr.update(), _status(str(err), error=True)
        state['history'].append((question, result['text']))
        state['regions'] = regions
        chat += [dict(role='user', content=html.escape(question)),
                 dict(role='assistant', content=html.escape(result['text']))]
        summary = f'{len(result["masks"])} mask(s), {len(result["boxes"])} box(es)'
        return state, chat, result['text'], overlay, downloads or None, _status(summary)


def build_demo(model, work_dir, max_pixels=None, max_new_tokens=None):
    """The Gradio Blocks of the demo.

    Args:
        model: The exported model (:func:`load_model`).
        work_dir (str): Folder for uploads' scratch files and answer files.
        max_pixels (int | None): Largest accepted image (width times height).
        max_new_tokens (int | None): Generation limit.

    Returns:
        gr.Blocks: The app (``.launch(...)`` it).
    """
    app = DemoApp(model, work_dir, max_pixels, max_new_tokens)
    sensors = [DETECT, *SENSORS]
    with gr.Blocks(title='EarthMind demo', theme=THEME, css=CSS, analytics_enabled=False,
                   delete_cache=(3600, 3600)) as demo:
        state = gr.State(None)
        gr.Markdown('## EarthMind\nUpload an image, press **Show image**, then ask about it.')
        with gr.Row():
            with gr.Column():
                files = gr.File(label='Image: PNG/JPEG, a multi-band GeoTIFF, or per-band GeoTIFFs',
                                file_count='multiple', type='filepath', elem_id='files')
                with gr.Row():
                    sensor = gr.Dropdown(sensors, value=DETECT, label='Sensor', elem_id='sensor')
                    date = gr.Textbox(label='Date (YYYY-MM-DD)', elem_id='date')
                with gr.Accordion('Change question: a second date', open=False):
                    second = gr.File(label='Image of the second date', type='filepath', elem_id='second')
                    second_date = gr.Textbox(label='Second date (YYYY-MM-DD)', elem_id='second_date')
                with gr.Accordion('SAR + optical pair', open=False):
                    sar = gr.File(label='SAR image (one file, or one per band)', file_count='multiple',
                                  type='filepath', elem_id='sar')
                    sar_sensor = gr.Dropdown([DETECT, *(n for n, s in SENSORS.items() if s.modality == 'sar')],
                                             value=DETECT, label='SAR sensor')
                load = gr.Button('Show image', elem_id='load')
                status = gr.Markdown(elem_id='status')
                view_choice = gr.Dropdown([], label='Band group / date the model sees', elem_id='view_choice')
                view = gr.Image(label="The model's view (click two corners to draw a region)", type='numpy',
                                format='png', interactive=False, elem_id='view')
                region = gr.Textbox(label='Region prompt x1, y1, x2, y2 (pixels)', elem_id='region')
            with gr.Column():
                chat = gr.Chatbot(type='messages', label='Conversation', height=240, elem_id='chat')
                overlay = gr.Image(label='Answer: masks and boxes', type='numpy', format='png', interactive=False,
                                   elem_id='overlay')
                question = gr.Textbox(label='Question', elem_id='question')
                gr.Examples([[prompt] for _, prompt in EXAMPLE_PROMPTS], inputs=[question],
                            example_labels=[task for task, _ in EXAMPLE_PROMPTS], label='Example prompts')
                ask = gr.Button('Ask', variant='primary', elem_id='ask')
                answer = gr.Textbox(label='Answer', interactive=False, elem_id='answer')
                downloads = gr.File(label='Downloads (masks GeoTIFF, boxes GeoJSON)', file_count='multiple',
                                    interactive=False, elem_id='downloads')
        load.click(app.load, [files, sensor, date, second, second_date, sar, sar_sensor],
                   [state, view, view_choice, chat, overlay, answer, downloads, region, status])
        view_choice.change(app.show_view, [view_choice, region, state], [view])
        view.select(app.click, [state], [view, region, status])
        ask_inputs, ask_outputs = [question, region, state, chat], [state, chat, answer, overlay, downloads, status]
        ask.click(app.ask, ask_inputs, ask_outputs)
        question.submit(app.ask, ask_inputs, ask_outputs)
    return demo


def serve(demo, host='127.0.0.1', port=7860, max_upload_mb=50, block=True):
    """Launch the app: bound to ``host`` only, uploads capped, no share link, no API page, no server rendering, and
    a page that loads nothing from other hosts (:class:`OfflinePage`)."""
    return demo.queue(default_concurrency_limit=1).launch(
        server_name=host, server_port=port, max_file_size=f'{max_upload_mb}mb', share=False, show_api=False,
        ssr_mode=False, pwa=False, mcp_server=False, inbrowser=False, prevent_thread_lock=not block, quiet=True,
        app_kwargs=dict(middleware=[Middleware(OfflinePage)]))

"""The EarthMind processor: everything that turns images and conversations into model inputs, in one object.

A config builds it from one dict in its model base. The model, the datasets, every pipeline step, the export and the
exported Hugging Face folder (``AutoProcessor.from_pretrained(folder, trust_remote_code=True)``) use it, so the
settings below exist once:

- the tokenizer, with the image tokens, one ``<sensor:NAME>`` token per registered sensor, ``[SEG]``,
  ``<VP_CONTEXT>`` and one ``<task:NAME>`` token per task added (generated, never listed by hand);
- the chat template and the maximum sequence length;
- dynamic tiling (tile size, tile limits, thumbnail) and the visual tokens per tile (patch size, pixel shuffle);
- the band-group vocabulary, the band groups and bands read per sensor, and the fusion layout (how many visual
  tokens a ``(dates, groups, tiles)`` layout gives);
- per-sensor scaling and normalisation (pure functions of ``band_scaling.py``), the RGB normalisation and the
  picture the grounding head sees.

The pipeline-step methods take and return the loaders' ``results`` dicts; the training transforms are thin wrappers
around them, and :meth:`EarthMindProcessor.__call__` chains the same methods for inference.
"""
import json
import os

import torch

from projects.earthmind.structures.batch import EarthMindBatch
from projects.earthmind.structures.box_codec import BoxFormatError, grid_to_pixels, parse_grounded_text
from projects.earthmind.structures.mask_codec import decode_planes, decode_region_prompt, encode_rle
from projects.earthmind.utils.special_tokens import (EARTHMIND_SPECIAL_TOKENS, GROUNDING_TOKENS, IMAGE_PLACEHOLDER,
                                                     IMG_CONTEXT_TOKEN, IMG_END_TOKEN, IMG_START_TOKEN, SEG_TOKEN,
                                                     VP_CONTEXT_TOKEN, VP_TOKEN, add_special_tokens, decode_answer)
from projects.earthmind.utils.visual_tokens import tokens_per_tile, visual_token_count

from .band_scaling import group_bands, normalize_bands, normalize_rgb, scale_bands
from .band_stats import load_band_stats
from .conversation import encode_conversation
from .grounding_composite import check_grounding_settings, multi_sensor_picture, rgb_composite
from .image_inputs import read_inference_image
from .sensor_prompt import add_sensor_tokens
from .sensors import (SENSORS, SensorSpec, band_group_vocabulary, get_sensor, group_band_order, register_sensor,
                      sensor_special_tokens)
from .task_prompt import add_task_token, task_special_tokens
from .templates import ChatTemplate, check_template_tokens, get_template
from .tiling import dynamic_tile, image_tensor, num_tiles_for_shape, tile_grid

PROCESSOR_FILE = 'processor_config.json'
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _build_tokenizer(tokenizer):
    if isinstance(tokenizer, (str, os.PathLike)):
        from transformers import AutoTokenizer
        return AutoTokenizer.from_pretrained(os.fspath(tokenizer))
    if isinstance(tokenizer, dict):
        fields = dict(tokenizer)
        build = fields.pop('type', None)
        if not callable(build):
            raise ValueError(f'a tokenizer config needs a callable "type" (e.g. AutoTokenizer.from_pretrained), got '
                             f'{build!r}')
        return build(**fields)
    return tokenizer


class EarthMindProcessor:
    """Tokenizer, chat template, tiling, band handling and scaling of an EarthMind model.

    Args:
        tokenizer (str | dict | PreTrainedTokenizerBase): A tokenizer folder, a config
            ``dict(type=AutoTokenizer.from_pretrained, pretrained_model_name_or_path=...)`` or a tokenizer; the
            EarthMind special tokens are added where it lacks them.
        template (str | dict | ChatTemplate): Chat template matching the LLM (name, fields or object).
        text_markers (bool): The template's markers are plain text for this tokenizer, as a checkpoint was trained
            (xtuner's ``phi3_chat`` on InternVL2.5's Qwen2.5 tokenizer: Sa2VA-4B, EarthMind-4B); answers then end
            where their text holds a stop word. By default every marker must be a single token of the tokenizer.
        tile_size (int): Tile side in pixels (the ViT input size).
        patch_size (int): ViT patch size.
        downsample_ratio (float): Pixel-shuffle ratio (0.5 merges 2x2 patches).
        min_tiles (int): Fewest grid tiles.
        max_tiles (int): Most grid tiles.
        use_thumbnail (bool): Add a whole-image thumbnail to grids of more than one tile.
        max_length (int): Longest training sequence (longer records are rejected, never cut).
        group_fusion (str): Band-group fusion of the model (``'mean'``, ``'attention'``, ``'concat'``, ...).
        date_fusion (str): Date fusion of the model (``'concat'``, ``'mean'``, ``'attention'``, ...).
        max_dates (int): Most dates a sample may have.
        band_groups (dict | None): ``{sensor: [(group, [three bands or 'A-B']), ...]}`` replacing a sensor's default
            groups.
        bands (dict | None): ``{sensor: [bands]}`` read per sensor; default the bands of its groups (all bands of
            a sensor without groups).
        band_stats (str | dict | None): Statistics overriding the registry's: a file of
            ``tools/compute_band_stats.py`` or its ``{sensor: {band: {'mean', 'std'}}}``.
        band_group_vocab (Sequence[str] | None): Band-group names, index = group id; default the registry's
            vocabulary plus the names of ``band_groups``.
        rgb_mean (Sequence[float]): Mean of 0-1 RGB products (ImageNet).
        rgb_std (Sequence[float]): Std of 0-1 RGB products (ImageNet).
        sensor_tokens (bool): Put the sensors' tokens before the image.
        task_tokens (bool): Open the first question with the record's ``<task:NAME>`` token.
        grounding (dict | None): Settings of the picture the grounding head sees (``grounding_composite.py``);
            None for a model without a grounding head.
        sensors (Sequence[dict] | None): Sensor specs to register first (an exported processor carries the specs
            it was trained with).
    """

    def __init__(self, tokenizer, template='qwen2_chat', text_markers=False, tile_size=448, patch_size=14,
                 downsample_ratio=0.5, min_tiles=1, max_tiles=6, use_thumbnail=True, max_length=4096,
                 group_fusion='mean', date_fusion='concat', max_dates=1, band_groups=None, bands=None, band_stats=None,
                 band_group_vocab=None, rgb_mean=IMAGENET_MEAN, rgb_std=IMAGENET_STD, sensor_tokens=True,
                 task_tokens=False, grounding=None, sensors=None):
        for fields in sensors or ():
            register_sensor(SensorSpec.from_dict(fields), replace=True)
        self.template = ChatTemplate(**dict(template, stop_words=tuple(template['stop_words']))) \
            if isinstance(template, dict) else get_template(template)
        self.tokenizer = _build_tokenizer(tokenizer)
        add_special_tokens(self.tokenizer, self.added_tokens())
        self.text_markers = bool(text_markers)
        if not self.text_markers:
            check_template_tokens(self.tokenizer, self.template)
        self.tile_size, self.patch_size, self.downsample_ratio = int(tile_size), int(patch_size), downsample_ratio
        self.tokens_per_tile = tokens_per_tile(self.tile_size, self.patch_size, downsample_ratio)
        self.tiling = dict(tile_size=self.tile_size, min_tiles=int(min_tiles), max_tiles=int(max_tiles),
                           use_thumbnail=bool(use_thumbnail))
        num_tiles_for_shape(1, 1, **self.tiling)  # checks the limits
        self.max_length, self.max_dates = int(max_length), int(max_dates)
        if self.max_dates < 1:
            raise ValueError(f'max_dates must be >= 1, got {max_dates}')
        self.group_fusion, self.date_fusion = group_fusion, date_fusion
        self.band_groups = {sensor: [(name, list(members)) for name, members in groups]
                            for sensor, groups in (band_groups or {}).items()}
        for sensor, groups in self.band_groups.items():
            get_sensor(sensor)
            for name, members in groups:
                if len(members) != 3:
                    raise ValueError(f'group {name!r} of {sensor} has {len(members)} bands; groups have exactly 3')
        self.bands = {sensor: [get_sensor(sensor).band(b).name for b in names] for sensor, names in
                      (bands or {}).items()}
        self.band_stats = load_band_stats(band_stats) if isinstance(band_stats, (str, os.PathLike)) else \
            {sensor: dict(entries) for sensor, entries in (band_stats or {}).items()}
        vocab = list(band_group_vocab) if band_group_vocab is not None else band_group_vocabulary()
        vocab += [name for groups in self.band_groups.values() for name, _ in groups if name not in vocab]
        if len(set(vocab)) != len(vocab):
            raise ValueError(f'band_group_vocab repeats names: {vocab}')
        self.band_group_vocab = vocab
        self.rgb_mean, self.rgb_std = [float(v) for v in rgb_mean], [float(v) for v in rgb_std]
        if len(self.rgb_mean) != 3 or len(self.rgb_std) != 3 or min(self.rgb_std) <= 0:
            raise ValueError(f'rgb_mean and rgb_std need 3 values (std positive), got {rgb_mean} and {rgb_std}')
        self.sensor_tokens, self.task_tokens = bool(sensor_tokens), bool(task_tokens)
        self.grounding = None if grounding is None else check_grounding_settings(grounding)

    # ------------------------------------------------------------------------------------------- tokens and layout
    @staticmethod
    def added_tokens():
        """Special tokens the processor gives its tokenizer, in order: image, sensor, grounding and task tokens."""
        return (*EARTHMIND_SPECIAL_TOKENS, *sensor_special_tokens(), *GROUNDING_TOKENS, *task_special_tokens())

    def token_id(self, token):
        """Id of a special token of the tokenizer."""
        token_id = self.tokenizer.convert_tokens_to_ids(token)
        if token_id is None or token_id == self.tokenizer.unk_token_id:
            raise ValueError(f'the tokenizer has no {token} token')
        return token_id

    @property
    def pad_token_id(self):
        """Id padding token rows (never attended): the tokenizer's pad token, else the first stop token."""
        pad = self.tokenizer.pad_token_id
        return pad if pad is not None else self.stop_token_ids()[0]

    def model_token_ids(self):
        """The ids the model core needs: ``image_token_id``, ``seg_token_id``, ``region_token_id``."""
        return dict(image_token_id=self.token_id(IMG_CONTEXT_TOKEN), seg_token_id=self.token_id(SEG_TOKEN),
                    region_token_id=self.token_id(VP_CONTEXT_TOKEN))

    def stop_token_ids(self, stop_words=None):
        """Ids that end generation: ``stop_words`` (each a single token), else the template's stop words the
        tokenizer has, else its eos.

        Raises:
            ValueError: If a stop word is not a single token.
        """
        ids = []
        for word in stop_words or ():
            encoded = self.tokenizer.encode(word, add_special_tokens=False)
            if len(encoded) == 1:
                ids.append(encoded[0])
            elif not self.text_markers:
                raise ValueError(f'Stop word {word!r} is not a single token for this tokenizer ({encoded})')
        if not stop_words:
            vocab = self.tokenizer.get_vocab()
            ids = [vocab[word] for word in self.template.stop_words if word in vocab]
        eos = self.tokenizer.eos_token_id
        if eos is not None and (not ids or self.text_markers) and eos not in ids:
            ids.append(eos)
        if not ids:
            raise ValueError('no stop token: the template\'s stop words are not tokens and the tokenizer has no eos')
        return ids

    def stop_texts(self, stop_words=None):
        """Stop words (default the template's) that are text, not single tokens (only with ``text_markers``)."""
        if not self.text_markers:
            return []
        vocab = self.tokenizer.get_vocab()
        return [word for word in (stop_words or self.template.stop_words) if word not in vocab]

    def text_stop(self, stop_words=None):
        """``text_stop(answer_ids) -> bool`` for :meth:`EarthMindCore.generate`: whether an answer's text holds one
        of :meth:`stop_texts`; None when every stop word is a token."""
        texts = self.stop_texts(stop_words)
        if not texts:
            return None
        # A stop word can start inside the token before its own tokens (BPE merges punctuation runs).
        tail = max(len(self.tokenizer.encode(text, add_special_tokens=False)) for text in texts) + 1

        def reached(answer_ids):
            decoded = self.tokenizer.decode(answer_ids[-tail:], skip_special_tokens=False)
            return any(text in decoded for text in texts)

        return reached

    def num_tiles(self, height, width):
        """Tiles (thumbnail included) of a ``height x width`` image."""
        return num_tiles_for_shape(height, width, **self.tiling)

    def num_image_tokens(self, image_layout):
        """``<IMG_CONTEXT>`` tokens of a sample with layout ``(D, G, T)``."""
        return visual_token_count(image_layout, self.tokens_per_tile, self.group_fusion, self.date_fusion)

    def sensor_groups(self, sensor):
        """``(group, [three members])`` of a sensor: the processor's, else the registry's defaults."""
        if sensor in self.band_groups:
            return self.band_groups[sensor]
        return [(name, list(members)) for name, members in get_sensor(sensor).default_groups]

    def group_names(self, sensors):
        """Group names of a sample with these sensors, in order."""
        return [name for sensor in sensors for name, _ in self.sensor_groups(sensor)]

    def bands_to_read(self):
        """``{sensor: [bands]}`` the loaders read for every registered sensor (empty: all of the file's bands): the
        configured ``bands``, else the bands of the sensor's groups in the order the groups use them."""
        selection = {}
        for name, spec in SENSORS.items():
            if name in self.bands:
                selection[name] = list(self.bands[name])
                continue
            selection[name] = group_band_order(spec, self.sensor_groups(name))
        return {name: bands for name, bands in selection.items() if bands}

    def band_statistics(self, sensor, band):
        """``(mean, std)`` of a sensor's band in physical units.

        Raises:
            ValueError: For a band without statistics.
        """
        entry = self.band_stats.get(sensor, {}).get(band)
        if entry is not None:
            return float(entry['mean']), float(entry['std'])
        spec = get_sensor(sensor).band(band)
        if spec.mean is None or spec.std is None:
            raise ValueError(f'no normalisation statistics for band {band} of {sensor}; compute them with '
                             'tools/compute_band_stats.py and give the processor band_stats=FILE')
        return spec.mean, spec.std

    def group_modalities(self):
        """Modality of every group of the vocabulary: that of the sensors whose groups use it (``'optical'`` for
        names no sensor uses).

        Raises:
            ValueError: If sensors of two modalities use one group name.
        """
        modalities = {}
        for name, spec in SENSORS.items():
            for group, _ in self.sensor_groups(name):
                if modalities.setdefault(group, spec.modality) != spec.modality:
                    raise ValueError(f'band group {group!r} is used by optical and SAR sensors; give them different '
                                     'names')
        return {group: modalities.get(group, 'optical') for group in self.band_group_vocab}

    def fusion_layout(self):
        """What the model's fusion is built with: the vocabulary, each group's modality, strategies, dates."""
        return dict(band_group_vocab=list(self.band_group_vocab), group_modalities=self.group_modalities(),
                    group_fusion=self.group_fusion, date_fusion=self.date_fusion, max_dates=self.max_dates)

    # ------------------------------------------------------------------------------------------- pipeline steps
    def scale_bands(self, results):
        """Stored numbers -> physical units (multi-sensor samples; ``ScaleBands``), in place: the arrays belong to
        this sample's results (read for it, or copied by an earlier step)."""
        if results.get('img') is not None:
            results['img'], results['valid'] = scale_bands(results['img'], results['valid'],
                                                           results['image_plan'].dates, _name(results), copy=False)
            results['bands_scaled'] = True
        return results

    def make_grounding_image(self, results):
        """Add ``grounding_image``, the 0-1 RGB picture the grounding head sees (``MakeGroundingImage``).

        Raises:
            ValueError: Without grounding settings, after normalisation, or before scaling of a multi-sensor sample.
        """
        name = _name(results)
        if self.grounding is None:
            raise ValueError('the processor has no grounding settings: give it grounding=dict(...) (the model needs '
                             'them with a grounding head)')
        if results.get('img') is None:
            results['grounding_image'] = None
        elif results.get('img_normalized'):
            raise ValueError(f'{name}: the grounding image must be made before normalisation')
        elif results.get('channels'):
            if not results.get('bands_scaled'):
                raise ValueError(f'{name}: the grounding image needs physical units; put it after ScaleBands')
            results['grounding_image'] = multi_sensor_picture(results['img'], results['valid'], results['channels'],
                                                              results['sensors'], self.grounding, name)
        else:
            try:
                results['grounding_image'] = rgb_composite(results['img'])
            except ValueError as err:
                raise ValueError(f'{name}: {err}') from err
        return results

    def normalize(self, results):
        """Normalise the image: RGB products with ``rgb_mean``/``rgb_std``, sensor bands with their statistics, in
        place (nodata -> 0; adds ``nodata_fraction``)."""
        img = results.get('img')
        if img is None:
            results['nodata_fraction'] = None
        elif results.get('channels'):
            results['img'], results['nodata_fraction'] = normalize_bands(img, results['valid'], results['channels'],
                                                                         self.band_statistics, copy=False)
        else:
            if img.shape[0] != 3:
                raise ValueError(f'{_name(results)}: an RGB product has 3 channels, got {img.shape[0]}')
            results['img'] = normalize_rgb(img, self.rgb_mean, self.rgb_std)
            results.setdefault('nodata_fraction', None)
        if img is not None:
            results['img_normalized'] = True
        return results

    def group_bands(self, results):
        """``img`` ``[D, C, H, W]`` -> ``[D, G, 3, H, W]`` and ``group_names`` (``GroupBands``)."""
        if results.get('img') is None:
            results['group_names'] = []
            return results
        results['img'], results['group_names'] = group_bands(results['img'], results['channels'], results['sensors'],
                                                             self.sensor_groups, _name(results))
        return results

    def tile(self, results):
        """Tile every date and group of ``img`` with one grid (``DynamicTiling``).

        ``img`` is an RGB product ``[3, H, W]`` or band groups ``[D, G, 3, H, W]``. Adds ``pixel_values``
        ``[D * G * T, 3, S, S]`` (date, group, tile order; grid tiles row-major, the thumbnail last),
        ``image_layout`` ``(D, G, T)`` and ``tile_grid`` ``(rows, cols, has_thumbnail)``; removes ``img``.
        """
        img = results.pop('img')
        size = self.tile_size
        if img is None:
            results.update(pixel_values=torch.zeros(0, 3, size, size), image_layout=(0, 0, 0), tile_grid=None)
            results.setdefault('group_names', [])
            return results
        if img.ndim == 3:
            img = img[None, None]
            results['group_names'] = ['rgb']
        dates, groups, channels, height, width = img.shape
        if channels != 3:
            raise ValueError(f'{_name(results)}: tiling expects 3-channel groups [D, G, 3, H, W], got {img.shape}')
        flat = image_tensor(img).reshape(dates * groups * 3, height, width)
        tiles = dynamic_tile(flat, **self.tiling)
        count = tiles.shape[0]
        tiles = tiles.reshape(count, dates, groups, 3, size, size).permute(1, 2, 0, 3, 4, 5)
        results.update(pixel_values=tiles.reshape(dates * groups * count, 3, size, size).contiguous(),
                       image_layout=(dates, groups, count), tile_grid=tile_grid(height, width, **self.tiling))
        return results

    def encode_conversation(self, conversations, num_image_tokens, sensors=(), task=None, system=None,
                            record_id=None, generation_prompt=False):
        """``input_ids`` and ``labels`` of a conversation (sensor and task tokens added as configured)."""
        if self.sensor_tokens:
            conversations = add_sensor_tokens(conversations, sensors)
        if self.task_tokens:
            conversations = add_task_token(conversations, task)
        return encode_conversation(conversations, self.tokenizer, self.template, num_image_tokens, self.max_length,
                                   system=system, record_id=record_id, generation_prompt=generation_prompt)

    def encode(self, results, generation_prompt=False):
        """Add ``input_ids``, ``labels`` and ``num_image_tokens`` (``EncodeConversation``)."""
        if 'image_layout' not in results:
            raise KeyError('encoding needs image_layout; put DynamicTiling before EncodeConversation')
        num_image_tokens = self.num_image_tokens(results['image_layout'])
        input_ids, labels = self.encode_conversation(
            results['conversations'], num_image_tokens, results.get('sensors') or [], results.get('task'),
            results.get('system'), results.get('record_id'), generation_prompt)
        results.update(input_ids=input_ids, labels=None if generation_prompt else labels,
                       num_image_tokens=num_image_tokens)
        return results

    def pack(self, results):
        """The sample dict the collate batches (``PackInputs``): tokens, tiles, layout, group ids, date offsets,
        ``meta`` and, when present, ``gt_masks``, ``region_masks`` and ``grounding_image``."""
        layout = torch.tensor(results['image_layout'], dtype=torch.long)
        offsets = results.get('date_offsets') or [0.0] * int(layout[0])
        if len(offsets) != int(layout[0]):
            raise ValueError(f'{_name(results)}: {len(offsets)} date offsets for {int(layout[0])} dates')
        if int(layout[0]) > self.max_dates:
            raise ValueError(f'{_name(results)}: {int(layout[0])} dates but the processor allows max_dates='
                             f'{self.max_dates}')
        unknown = [g for g in results.get('group_names') or [] if g not in self.band_group_vocab]
        if unknown:
            raise ValueError(f'{_name(results)}: band groups {unknown} are not in the vocabulary '
                             f'{self.band_group_vocab}')
        img_meta, sensors, channels = results.get('img_meta') or {}, results.get('sensors') or [], \
            results.get('channels')
        meta = dict(id=results.get('record_id'), index=results.get('index'),
                    image=img_meta.get('files', results.get('img_path')), ori_shape=results.get('ori_shape'),
                    sensor=sensors[0] if len(sensors) == 1 else (sensors or None),
                    bands=[f'{sensor}:{band}' for sensor, band in channels] if channels else None,
                    dates=results.get('dates') or None, nodata_fraction=results.get('nodata_fraction'),
                    tile_grid=results.get('tile_grid'))
        for key in ('crs', 'transform'):
            if img_meta.get(key) is not None:
                meta[key] = tuple(img_meta[key]) if key == 'transform' else img_meta[key]
        if results.get('eval') is not None:
            meta['eval'] = results['eval']
        sample = dict(input_ids=results['input_ids'], labels=results.get('labels'),
                      pixel_values=results['pixel_values'], image_layout=layout,
                      num_image_tokens=results['num_image_tokens'], meta=meta,
                      group_ids=torch.tensor([self.band_group_vocab.index(g) for g in results.get('group_names') or []],
                                             dtype=torch.long),
                      date_offsets=torch.tensor(offsets, dtype=torch.float32))
        for key, out_key, dtype in (('gt_mask', 'gt_masks', torch.bool), ('region_mask', 'region_masks', torch.bool),
                                    ('grounding_image', 'grounding_image', torch.float32)):
            if results.get(key) is not None:
                sample[out_key] = torch.as_tensor(results[key]).to(dtype)
        return sample

    def prepare_pixels(self, results):
        """The pixel steps of training without augmentation: scale, grounding picture, normalise, group, tile."""
        if results.get('channels'):
            results = self.scale_bands(results)
        if self.grounding is not None:
            results = self.make_grounding_image(results)
        results = self.normalize(results)
        if results.get('channels'):
            results = self.group_bands(results)
        return self.tile(results)

    # ------------------------------------------------------------------------------------------- inference
    def __call__(self, image=None, text='', sensor=None, bands=None, date=None, window=None, history=(),
                 system=None, task=None, region_prompts=None, **fields):
        """Model inputs for a question about an image, read and prepared exactly as in training.

        Args:
            image: A file path (GeoTIFF, PNG, JPEG), a numpy ``[C, H, W]`` array or a PIL image; with a sensor also
                a ``{band: path}`` mapping of per-band files, a SAR + optical pair ``{'optical': img, 'sar': img}``
                or a time series ``[(date, img), ...]``; None for text only.
            text (str): The question.
            sensor (str | dict | None): Sensor name (``{'optical': ..., 'sar': ...}`` for a pair); None for an
                RGB product.
            bands (Sequence[str] | None): Band names of the image's channels when not the sensor's full list.
            date (str | None): ISO acquisition date (Sentinel-2 scaling needs it or ``processing_baseline``).
            window (Sequence[int] | None): ``(col_off, row_off, width, height)`` to read.
            history (Sequence[tuple[str, str]]): Earlier ``(question, answer)`` turns; the image belongs to the
                first question.
            system (str | None): System text (the template's default when None).
            task (str | None): The task (its token opens the prompt when the processor has ``task_tokens``).
            region_prompts (Sequence | None): One region per ``<vp>`` in the human turns (``history`` and ``text``),
                in order, in pixels of the image (of ``window``): a box ``[x1, y1, x2, y2]``, a bool ``[H, W]``
                array, or a record's ``{"box": [...]}`` / ``{"mask": <mask>}`` (``data/README.md``). Decoded as
                ``LoadSegmentationMasks`` decodes a record's ``region_prompts``.
            **fields: ``processing_baseline``, ``sar_units``.

        Returns:
            EarthMindBatch: A batch of one sample; ``meta[0]`` holds the image's ``crs``, ``transform`` and
            ``ori_shape``.
        """
        samples = self.samples(image, [text], sensor, bands, date, window, history, system, task,
                               region_prompts=region_prompts, **fields)
        return EarthMindBatch.collate(samples, pad_index=self.pad_token_id)

    def samples(self, image=None, texts=('',), sensor=None, bands=None, date=None, window=None, history=(),
                system=None, task=None, header_cache=None, handles=None, region_prompts=None, **fields):
        """One sample dict (as :meth:`pack` makes them) per question about one image, read once.

        The arguments are those of :meth:`__call__`, with ``texts`` the questions; the samples share the pixels.
        ``header_cache`` (a dict) and ``handles`` (:class:`RasterHandles`) keep file headers and open files across
        calls, for many windows of one scene. :meth:`EarthMindBatch.collate` batches the samples (also with samples
        of other images).
        """
        read = read_inference_image(image, sensor, bands, date, window, fields, self.bands_to_read(), header_cache,
                                    handles)
        results = dict(read, record_id='input', index=0)
        if region_prompts:
            if read['img'] is None:
                raise ValueError('region_prompts given without an image')
            entries = [_region_prompt_entry(prompt) for prompt in region_prompts]
            results['region_mask'] = decode_planes(entries, decode_region_prompt, *read['img'].shape[-2:],
                                                   'region_prompts')
        pixels = self.prepare_pixels(results)
        samples = []
        for text in texts:
            questions = [question for question, _ in history] + [text]
            found = sum(question.count(VP_TOKEN) for question in questions)
            if found != len(region_prompts or ()):
                raise ValueError(f'{found} {VP_TOKEN} in the questions but {len(region_prompts or ())} region_prompts; '
                                 'they must match one to one, in order')
            turns = [turn for question, answer in history for turn in (dict(value=question), dict(value=answer))]
            turns.append(dict(value=text))
            for i, turn in enumerate(turns):
                turn['from'] = 'human' if i % 2 == 0 else 'gpt'
            results = dict(pixels, conversations=turns, system=system, task=task)
            samples.append(self.pack(self.encode(results, generation_prompt=True)))
        return samples

    def decode(self, ids):
        """Answer text of generated ids: special tokens dropped except ``[SEG]`` (it marks each mask's place) and the
        box markup; with ``text_markers`` the text ends before the first stop word."""
        text = decode_answer(self.tokenizer, list(ids))
        for stop in self.stop_texts():
            text = text.split(stop)[0]
        return text

    def decode_prompt(self, ids):
        """Prompt text with each image token run shown as ``<image>``."""
        text = self.tokenizer.decode(list(ids), skip_special_tokens=False)
        context = IMG_START_TOKEN + IMG_CONTEXT_TOKEN
        while context in text:
            start = text.index(context)
            end = text.index(IMG_END_TOKEN, start) + len(IMG_END_TOKEN)
            text = text[:start] + IMAGE_PLACEHOLDER + text[end:]
        return text

    def post_process(self, answer_ids, meta, masks=()):
        """The answer of :meth:`EarthMindForConditionalGeneration.predict_forward`: ``text``, ``boxes`` (each
        ``<ref>phrase</ref><box>[[...]]</box>`` as ``phrase``, ``box`` on the 0-1000 grid and ``box_pixels``),
        ``masks``, ``prediction_ids`` and the image's ``crs``, ``transform`` and ``size``."""
        text = self.decode(answer_ids)
        size = tuple(meta['ori_shape']) if meta.get('ori_shape') is not None else None
        boxes = []
        try:
            for group in parse_grounded_text(text):
                for box in group.boxes:
                    pixels = grid_to_pixels(box, size[1], size[0]) if size is not None else None
                    boxes.append(dict(phrase=group.phrase, box=list(box), box_pixels=pixels and list(pixels)))
        except BoxFormatError:
            boxes = []  # malformed box text: the answer reports no boxes
        return dict(text=text, boxes=boxes, masks=list(masks), prediction_ids=list(answer_ids),
                    crs=meta.get('crs'), transform=meta.get('transform'), size=size)

    # ------------------------------------------------------------------------------------------- saving
    def to_dict(self):
        """The settings as saved in ``processor_config.json`` (every sensor spec included)."""
        return dict(template=dict(vars(self.template), stop_words=list(self.template.stop_words)),
                    text_markers=self.text_markers, patch_size=self.patch_size,
                    downsample_ratio=self.downsample_ratio, **self.tiling,
                    max_length=self.max_length, group_fusion=self.group_fusion, date_fusion=self.date_fusion,
                    max_dates=self.max_dates, band_groups={s: [[n, m] for n, m in g] for s, g in
                                                           self.band_groups.items()},
                    bands=self.bands, band_stats=self.band_stats, band_group_vocab=self.band_group_vocab,
                    rgb_mean=self.rgb_mean, rgb_std=self.rgb_std, sensor_tokens=self.sensor_tokens,
                    task_tokens=self.task_tokens, grounding=self.grounding,
                    sensors=[spec.to_dict() for spec in SENSORS.values()])

    def save_pretrained(self, folder, auto_map=None):
        """Write ``processor_config.json`` and the tokenizer files into ``folder``."""
        os.makedirs(folder, exist_ok=True)
        self.tokenizer.save_pretrained(folder)
        config = dict(self.to_dict(), processor_class=type(self).__name__)
        if auto_map:
            config['auto_map'] = dict(auto_map)
        with open(os.path.join(folder, PROCESSOR_FILE), 'w', encoding='utf-8') as f:
            json.dump(config, f, indent=2)
            f.write('\n')

    @classmethod
    def register_for_auto_class(cls, auto_class='AutoProcessor'):
        """Called by ``AutoProcessor`` for remote code loaded from a folder; :meth:`save_pretrained` writes the
        ``auto_map`` itself, so there is nothing to record."""

    @classmethod
    def from_pretrained(cls, folder, **kwargs):
        """Load a processor saved by :meth:`save_pretrained` (offline; ``kwargs`` go to ``AutoTokenizer``)."""
        from transformers import AutoTokenizer
        folder = os.fspath(folder)
        with open(os.path.join(folder, PROCESSOR_FILE), encoding='utf-8') as f:
            config = json.load(f)
        for key in ('processor_class', 'auto_map'):
            config.pop(key, None)
        kwargs = {k: v for k, v in kwargs.items() if k in ('trust_remote_code', 'revision', 'local_files_only')}
        return cls(AutoTokenizer.from_pretrained(folder, **kwargs), **config)


def _region_prompt_entry(prompt):
    """A record's region prompt entry for an inference region: a box, a bool array, or already an entry."""
    if isinstance(prompt, dict):
        return prompt
    if hasattr(prompt, 'ndim') and prompt.ndim == 2:
        return {'mask': encode_rle(prompt)}
    return {'box': list(prompt)}


def _name(results):
    return f'record {results.get("index")} (id={results.get("record_id")!r})'

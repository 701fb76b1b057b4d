"""Hugging Face model of an exported EarthMind checkpoint (loaded with ``trust_remote_code=True``).

The vision encoder, band fusion, projector and visual-token count are the training package's own modules
(copied into the exported folder by ``bundle.py``); the LLM is a standard ``transformers`` causal LM. Submodule
names equal the training model's (``vision_model``, ``band_fusion``, ``mlp1``, ``language_model``), so a merged
training state dict loads key for key.
"""
import numpy as np
import torch
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from projects.earthmind.datasets.grounding_composite import rgb_composite  # noqa: F401
from projects.earthmind.datasets.sensors import get_sensor
# transformers copies only the modules that the modeling file imports itself into its remote-code cache, so every
# bundled module is imported here directly (bundle.py checks this).
from projects.earthmind.datasets.templates import ChatTemplate  # noqa: F401
from projects.earthmind.datasets.tiling import tile_grid
from projects.earthmind.evaluation.box_codec import BoxFormatError, grid_to_pixels, parse_grounded_text
from projects.earthmind.hf.configuration_earthmind import EarthMindConfig
from projects.earthmind.hf.image_inputs import (date_offsets, grounding_picture, group_planes, normalized_channels,
                                                physical_channels, read_image, rgb_pixels, rgb_unit_pixels,
                                                tile_stack)
from projects.earthmind.hf.prompt_encoding import encode_prompt, image_prompt_prefix, template_from_fields
from projects.earthmind.models.band_fusion import BandFusion
from projects.earthmind.models.intern_vit import InternViT
from projects.earthmind.models.projector import build_mlp_projector, pixel_shuffle, tokens_per_tile
from projects.earthmind.models.sam2_grounding_head import SAM2GroundingHead
from projects.earthmind.models.seg_token_path import run_grounding_head, token_positions
from projects.earthmind.models.visual_token_regions import visual_token_coverage  # noqa: F401
from projects.earthmind.utils.special_tokens import IMG_CONTEXT_TOKEN, SEG_TOKEN, decode_answer
from projects.earthmind.utils.visual_tokens import visual_token_count

# Saved-config bookkeeping that must not be passed back when the LLM config is rebuilt.
_LLM_CONFIG_SKIP = ('model_type', 'architectures', 'auto_map', 'transformers_version', 'torch_dtype',
                    'attn_implementation', '_name_or_path')
_SPEC_KEYS = ('sensor', 'bands', 'date', 'processing_baseline', 'sar_units')


class EarthMindForConditionalGeneration(PreTrainedModel):
    """InternViT -> band/date fusion -> pixel shuffle -> ``mlp1`` -> causal LM, with ``predict_forward``."""

    config_class = EarthMindConfig
    base_model_prefix = 'earthmind'
    main_input_name = 'input_ids'
    _supports_sdpa = True

    def __init__(self, config):
        super().__init__(config)
        self.vision_model = InternViT(**config.vision_config)
        llm_fields = {k: v for k, v in config.llm_config.items() if k not in _LLM_CONFIG_SKIP}
        llm_config = AutoConfig.for_model(config.llm_config['model_type'], **llm_fields)
        self.language_model = AutoModelForCausalLM.from_config(
            llm_config, attn_implementation=config.llm_config.get('attn_implementation', 'sdpa'))
        self.band_fusion = BandFusion(hidden_size=self.vision_model.hidden_size, **config.fusion_config)
        self.mlp1 = build_mlp_projector(self.vision_model.hidden_size, llm_config.hidden_size,
                                        config.downsample_ratio)
        self.tokens_per_tile = tokens_per_tile(self.vision_model.image_size, self.vision_model.patch_size,
                                               config.downsample_ratio)
        self.grounding_head = None
        if config.grounding_config:
            # The SAM2 weights come with the checkpoint; the sam2 package builds the modules from its own config.
            self.grounding_head = SAM2GroundingHead(llm_hidden_size=llm_config.hidden_size, checkpoint=None,
                                                    **config.grounding_config)
        self._tied_weights_keys = ['language_model.' + k for k in (self.language_model._tied_weights_keys or [])]
        self._tokenizer = None
        self.post_init()

    def _init_weights(self, module):
        # Only reached for weights a checkpoint does not hold.
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)

    def get_input_embeddings(self):
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.language_model.set_input_embeddings(value)

    def get_output_embeddings(self):
        return self.language_model.get_output_embeddings()

    def set_output_embeddings(self, value):
        self.language_model.set_output_embeddings(value)

    # ----------------------------------------------------------------------------------------------- visual side
    def _patch_tokens(self, pixel_values):
        size = self.vision_model.image_size
        if pixel_values.ndim != 4 or tuple(pixel_values.shape[-2:]) != (size, size):
            raise ValueError(f'pixel_values must be [N, C, {size}, {size}], got {tuple(pixel_values.shape)}')
        pixel_values = pixel_values.to(self.vision_model.embeddings.patch_embedding.weight.dtype)
        if self.config.select_layer == -1:
            features = self.vision_model(pixel_values)
        else:
            features = self.vision_model(pixel_values, output_hidden_states=True)[1][self.config.select_layer]
        return features[:, 1:]  # drop CLS

    def _project(self, patch_tokens):
        grid = self.vision_model.image_size // self.vision_model.patch_size
        features = patch_tokens.reshape(patch_tokens.shape[0], grid, grid, patch_tokens.shape[-1])
        features = pixel_shuffle(features, self.config.downsample_ratio)
        features = features.reshape(features.shape[0], -1, features.shape[-1])
        return self.mlp1(features.to(self.mlp1[0].weight.dtype))

    def visual_token_counts(self, image_layout):
        """LLM visual tokens per sample of ``image_layout`` ``[B, 3]``."""
        return [visual_token_count(layout, self.tokens_per_tile, self.band_fusion.group_fusion,
                                   self.band_fusion.date_fusion) for layout in torch.as_tensor(image_layout).tolist()]

    def embed_inputs(self, input_ids, pixel_values=None, image_layout=None, group_ids=None, date_offsets=None):
        """LLM input embeddings with the fused visual tokens at the ``<IMG_CONTEXT>`` positions.

        Raises:
            ValueError: When a sample's ``<IMG_CONTEXT>`` count differs from its visual token count.
        """
        embeds = self.get_input_embeddings()(input_ids)
        if image_layout is None or pixel_values is None or pixel_values.shape[0] == 0:
            return embeds
        context_id = self._context_token_id()
        image_mask = input_ids == context_id
        layout = torch.as_tensor(image_layout, dtype=torch.long).cpu()
        for b, expected in enumerate(self.visual_token_counts(layout)):
            found = int(image_mask[b].sum())
            if found != expected:
                raise ValueError(f'sample {b}: {found} {IMG_CONTEXT_TOKEN} tokens but image_layout '
                                 f'{tuple(layout[b].tolist())} gives {expected} visual tokens')
        fused = self.band_fusion(self._patch_tokens(pixel_values), layout, group_ids, date_offsets)
        visual = self._project(fused).reshape(-1, embeds.shape[-1])
        return embeds.masked_scatter(image_mask.unsqueeze(-1), visual.to(embeds.dtype))

    def _context_token_id(self):
        token_id = self.config.preprocessing.get('img_context_token_id')
        if token_id is None:
            raise ValueError('config.preprocessing has no img_context_token_id')
        return token_id

    def forward(self, input_ids, attention_mask=None, pixel_values=None, image_layout=None, group_ids=None,
                date_offsets=None, labels=None, **kwargs):
        """Logits (and the loss with ``labels``) of a batch in the training batch layout."""
        embeds = self.embed_inputs(input_ids, pixel_values, image_layout, group_ids, date_offsets)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        return self.language_model(inputs_embeds=embeds, attention_mask=attention_mask.long(), labels=labels,
                                   use_cache=False, **kwargs)

    # ----------------------------------------------------------------------------------------------- inference
    @property
    def tokenizer(self):
        """The tokenizer saved beside the weights (loaded on first use)."""
        if self._tokenizer is None:
            self._tokenizer = AutoTokenizer.from_pretrained(self.config._name_or_path)
        return self._tokenizer

    @tokenizer.setter
    def tokenizer(self, value):
        self._tokenizer = value

    @staticmethod
    def _member_specs(image, sensor, bands, date, extra):
        """Normalise the image argument into dates, each a list of member specs."""

        def spec(entry, defaults):
            fields = dict(defaults)
            if isinstance(entry, dict) and 'image' in entry:
                fields.update({k: v for k, v in entry.items() if k != 'image'})
                entry = entry['image']
            return dict(fields, image=entry)

        base = dict(extra, sensor=sensor, bands=bands, date=date)
        if isinstance(image, dict) and set(image) == {'optical', 'sar'}:
            sensors = sensor if isinstance(sensor, dict) else {}
            members = [spec(image[role], dict(base, sensor=sensors.get(role), role=role, bands=None))
                       for role in ('optical', 'sar')]
            for member in members:
                if member['sensor'] is None:
                    raise ValueError(f'a SAR + optical pair needs the sensor of its {member["role"]} image: pass '
                                     "sensor={'optical': ..., 'sar': ...} or {'image': ..., 'sensor': ...}")
            return [members]
        if isinstance(image, (list, tuple)):
            dates = []
            for entry in image:
                if isinstance(entry, tuple) and len(entry) == 2:
                    entry = dict(date=entry[0], image=entry[1])
                dates.append([spec(entry, base)])
            return dates
        return [[spec(image, base)]]

    def prepare_image(self, image, sensor=None, bands=None, date=None, window=None, **extra):
        """Tiles and layout of an image, a SAR + optical pair or a time series.

        Returns:
            dict: ``pixel_values`` ``[D*G*T, 3, S, S]``, ``image_layout`` ``[1, 3]``, ``group_ids``, ``date_offsets``,
            ``sensors``, ``crs``, ``transform`` and ``size`` ``(H, W)`` of the (first) image.
        """
        prep = self.config.preprocessing
        vocab = list(self.band_fusion.band_group_vocab)
        dates, stacks, group_names, sensors, first, loaded = [], [], None, [], None, []
        for members in self._member_specs(image, sensor, bands, date, extra):
            names, planes_per_member = [], []
            loaded.append([])
            for member in members:
                item = read_image(member['image'], window)
                first = first or item
                if member.get('sensor') is None:
                    names.append('rgb')
                    unit = rgb_unit_pixels(item)
                    loaded[-1].append(dict(sensor=None, rgb=unit))
                    planes_per_member.append(rgb_pixels(unit, prep['rgb_mean'], prep['rgb_std'])[None])
                    continue
                sensor_name = get_sensor(member['sensor']).name
                stats = prep.get('band_stats', {}).get(sensor_name)
                if stats is None:
                    raise ValueError(f'sensor {sensor_name} has no statistics in the exported preprocessing config '
                                     f'(known: {", ".join(prep.get("band_stats", {}))})')
                channels = physical_channels(item, sensor_name, member.get('bands'), member.get('date'),
                                             member.get('processing_baseline'), member.get('sar_units', 'power'))
                loaded[-1].append(dict(sensor=sensor_name, channels=channels))
                planes = normalized_channels(channels, sensor_name, stats)
                groups = prep.get('band_groups', {}).get(sensor_name) or get_sensor(sensor_name).default_groups
                member_names, stack = group_planes(planes, sensor_name, groups, item.name)
                names += member_names
                planes_per_member.append(stack)
                sensors.append(sensor_name)
            shapes = {p.shape[-2:] for p in planes_per_member}
            if len(shapes) > 1:
                raise ValueError(f'the images of one date must have one size, got {sorted(shapes)}')
            if group_names is not None and names != group_names:
                raise ValueError(f'every date must have the same sensors and bands, got {group_names} and {names}')
            group_names = names
            stacks.append(np.concatenate(planes_per_member))
            dates.append(members[0].get('date'))
        sizes = {s.shape[-2:] for s in stacks}
        if len(sizes) > 1:
            raise ValueError(f'every date must have the same size, got {sorted(sizes)}')
        unknown = [n for n in group_names if n not in vocab]
        if unknown:
            raise ValueError(f'band groups {unknown} are not in the model\'s band_group_vocab {vocab}')
        pixel_values, layout = tile_stack(np.stack(stacks), prep)
        prepared = dict(pixel_values=pixel_values, image_layout=torch.tensor([layout]),
                        group_ids=[torch.tensor([vocab.index(n) for n in group_names])],
                        date_offsets=[torch.tensor(date_offsets(dates), dtype=torch.float32)],
                        sensors=list(dict.fromkeys(sensors)), crs=first.crs, transform=first.transform,
                        size=tuple(stacks[0].shape[-2:]),
                        tile_grid=tile_grid(*stacks[0].shape[-2:], prep['tile_size'], prep['min_tiles'],
                                            prep['max_tiles'], prep['use_thumbnail']))
        if self.grounding_head is not None:
            prepared['grounding_image'] = torch.from_numpy(self._grounding_member(loaded, prep['grounding']))
        return prepared

    @staticmethod
    def _grounding_member(loaded, settings):
        """The picture SAM2 sees: the configured date's member of the configured modality (``MakeGroundingImage``)."""
        members = loaded[settings.get('date', -1)]
        if len(members) > 1:
            source = settings.get('source', 'optical')
            members = [m for m in members if m['sensor'] is not None and get_sensor(m['sensor']).modality == source]
            if not members:
                raise ValueError(f'the grounding image comes from the {source} member, which this input lacks')
        return grounding_picture(members[0], settings)

    def stop_token_ids(self, tokenizer=None):
        """Ids that end generation: ``config.generation['stop_words']`` (single tokens), else eos.

        Raises:
            ValueError: If a stop word is not a single token of the tokenizer.
        """
        tokenizer = tokenizer or self.tokenizer
        ids = []
        for word in self.config.generation.get('stop_words') or ():
            encoded = tokenizer.encode(word, add_special_tokens=False)
            if len(encoded) != 1:
                raise ValueError(f'Stop word {word!r} is not a single token of the tokenizer ({encoded})')
            ids.append(encoded[0])
        return ids or [tokenizer.eos_token_id]

    @torch.no_grad()
    def answer_masks(self, prompt_ids, answer_ids, visual):
        """One bool ``[H, W]`` mask per ``[SEG]`` of ``answer_ids`` (a ``[SEG]`` in the prompt asks for none).

        Args:
            prompt_ids (list[int]): The prompt.
            answer_ids (list[int]): The answer (stop id excluded).
            visual (dict): :meth:`prepare_image` output (with ``grounding_image``).
        """
        seg_id = self.tokenizer.get_vocab().get(SEG_TOKEN)
        if seg_id is None or seg_id not in answer_ids:
            return []
        ids = torch.tensor([list(prompt_ids) + list(answer_ids)], dtype=torch.long, device=self.device)
        embeds = self.embed_inputs(ids, visual['pixel_values'].to(self.device), visual['image_layout'],
                                   visual['group_ids'], visual['date_offsets'])
        hidden = self.language_model(inputs_embeds=embeds, attention_mask=torch.ones_like(ids), use_cache=False,
                                     output_hidden_states=True).hidden_states[-1]
        positions = [p[p >= len(prompt_ids)] for p in token_positions(ids, seg_id)]
        logits = run_grounding_head(self.grounding_head, hidden, positions, [visual['grounding_image']], ['input'])
        return list((logits[0] > 0).cpu().numpy())

    @torch.no_grad()
    def generate_answer_ids(self, input_ids, pixel_values=None, image_layout=None, group_ids=None,
                            date_offsets=None, max_new_tokens=None, **gen_kwargs):
        """Greedy (unless ``gen_kwargs`` say otherwise) new ids for one prompt ``[1, L]``, stop id excluded."""
        input_ids = input_ids.to(self.device)
        if pixel_values is not None:
            pixel_values = pixel_values.to(self.device)
        embeds = self.embed_inputs(input_ids, pixel_values, image_layout, group_ids, date_offsets)
        stop_ids = self.stop_token_ids()
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else stop_ids[0]
        kwargs = dict(do_sample=False, num_beams=1, eos_token_id=stop_ids, pad_token_id=pad_id,
                      max_new_tokens=max_new_tokens or self.config.generation.get('max_new_tokens', 64))
        kwargs.update(gen_kwargs)
        row = self.language_model.generate(inputs_embeds=embeds, attention_mask=torch.ones_like(input_ids),
                                           **kwargs)[0].tolist()
        end = next((i for i, t in enumerate(row) if t in stop_ids), len(row))
        return row[:end]

    def predict_forward(self, image=None, text='', sensor=None, bands=None, date=None, window=None, history=(),
                        system=None, max_new_tokens=None, tokenizer=None, **extra):
        """Answer a question about an image.

        Args:
            image: A file path (GeoTIFF, PNG, JPEG), a numpy ``[C, H, W]`` array, a PIL image, a SAR + optical pair
                ``{'optical': img, 'sar': img}`` or a time series ``[(date, img), ...]`` / ``[{'date', 'image'}]``;
                None for text only.
            text (str): The question.
            sensor (str | dict | None): Sensor registry name (``'sentinel2_l2a'``); ``{'optical', 'sar'}`` for a
                pair; None for an RGB product.
            bands (Sequence[str] | None): Band names of the image's channels when they are not the sensor's full
                canonical list.
            date (str | None): ISO acquisition date (Sentinel-2 scaling needs it or ``processing_baseline``).
            window (Sequence[int] | None): ``(col_off, row_off, width, height)`` to read.
            history (Sequence[tuple[str, str]]): Earlier ``(question, answer)`` turns; the image belongs to the
                first question.
            system (str | None): System text (template default when None).
            max_new_tokens (int | None): Generation limit (config default when None).
            tokenizer: Tokenizer to use instead of the saved one.
            **extra: ``processing_baseline``, ``sar_units`` for the image.

        Returns:
            dict: ``text`` (the answer), ``boxes`` (list of ``{'phrase', 'box', 'box_pixels'}``; ``box`` on the
            0-1000 grid), ``masks`` (one bool ``[H, W]`` numpy mask per ``[SEG]`` of the answer, in order, at the
            image's size; ``[]`` without a grounding head or image), ``prediction_ids``, ``crs``, ``transform`` and
            ``size`` of the image.
        """
        if tokenizer is not None:
            self.tokenizer = tokenizer
        prep = self.config.preprocessing
        template = template_from_fields(prep['template'])
        visual = self.prepare_image(image, sensor, bands, date, window, **extra) if image is not None else None
        questions = [q for q, _ in history] + [text]
        answers = [a for _, a in history]
        num_tokens = 0
        if visual is not None:
            num_tokens = self.visual_token_counts(visual['image_layout'])[0]
            prefix = image_prompt_prefix(visual['sensors'], prep.get('sensor_tokens', False))
            if '<image>' in questions[0]:
                questions[0] = questions[0].replace('<image>', prefix, 1)
            else:
                questions[0] = f'{prefix}\n{questions[0]}'
        ids = encode_prompt(self.tokenizer, template, questions, answers, num_tokens, system)
        input_ids = torch.tensor([ids], dtype=torch.long)
        args = {} if visual is None else {k: visual[k] for k in ('pixel_values', 'image_layout', 'group_ids',
                                                                 'date_offsets')}
        new_ids = self.generate_answer_ids(input_ids, max_new_tokens=max_new_tokens, **args)
        answer = decode_answer(self.tokenizer, new_ids)
        masks = []
        if self.grounding_head is not None and visual is not None:
            masks = self.answer_masks(ids, new_ids, visual)
        size = visual['size'] if visual is not None else None
        boxes = []
        try:
            for group in parse_grounded_text(answer):
                for box in group.boxes:
                    pixels = grid_to_pixels(box, size[1], size[0]) if size is not None else None
                    boxes.append(dict(phrase=group.phrase, box=list(box), box_pixels=pixels and list(pixels)))
        except BoxFormatError:
            boxes = []  # the answer's box text is malformed: no boxes are reported for it
        return dict(text=answer, boxes=boxes, masks=masks, prediction_ids=new_ids,
                    crs=visual['crs'] if visual else None, transform=visual['transform'] if visual else None,
                    size=size)

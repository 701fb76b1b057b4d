"""Export a trained EarthMind model as a self-contained Hugging Face folder.

:func:`export_to_hf` builds the model from its mmengine config, loads a checkpoint strictly
(``load_test_checkpoint``: mmengine ``.pth`` or a DeepSpeed ZeRO-1/2 folder), merges LoRA into the base weights,
and writes sharded safetensors, ``config.json`` (with ``auto_map``), the tokenizer, ``generation_config.json``,
``preprocessor_config.json`` and the bundled modeling code (``bundle.py``).
"""
import inspect
import json
import os

from peft import PeftModel
from transformers import GenerationConfig

from projects.earthmind.datasets.sensors import SENSORS, get_sensor
from projects.earthmind.datasets.templates import get_template
from projects.earthmind.datasets.transforms.normalize_bands import load_band_stats
from projects.earthmind.evaluation.checkpoint_loading import load_test_checkpoint
from projects.earthmind.models.intern_vit import InternViT
from projects.earthmind.models.internvl_checkpoint import CONFIG_FILE, read_json
from projects.earthmind.registry import MODELS
from projects.earthmind.utils.special_tokens import image_context_token_id

from .bundle import write_modeling_bundle
from .configuration_earthmind import EarthMindConfig
from .modeling_earthmind import EarthMindForConditionalGeneration

PREPROCESSOR_FILE = 'preprocessor_config.json'
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
_AUTO_MAP = {'AutoConfig': 'configuration_earthmind.EarthMindConfig',
             'AutoModel': 'modeling_earthmind.EarthMindForConditionalGeneration',
             'AutoModelForCausalLM': 'modeling_earthmind.EarthMindForConditionalGeneration'}


def _type_name(step):
    kind = step.get('type') if isinstance(step, dict) else type(step)
    return kind if isinstance(kind, str) else getattr(kind, '__name__', str(kind))


def _pipeline_steps(cfg):
    for key in ('test_dataloader', 'val_dataloader', 'train_dataloader'):
        loader = cfg.get(key)
        if loader and loader.get('dataset', {}).get('pipeline'):
            return {_type_name(step): step for step in loader['dataset']['pipeline']}
    raise ValueError('The config has no dataloader with a pipeline: the preprocessing cannot be exported')


def _sensor_entries(loader_bands, stats_file, groups):
    """Bands, statistics and groups of every registered sensor whose selected bands all have statistics."""
    overrides = load_band_stats(stats_file) if stats_file else {}
    band_stats, band_groups, sensor_bands = {}, {}, {}
    for name, sensor in SENSORS.items():
        selected = [sensor.band(b).name for b in loader_bands.get(name, ())] or list(sensor.default_band_list())
        stats = {}
        for band_name in selected:
            entry = overrides.get(name, {}).get(band_name)
            band = sensor.band(band_name)
            if entry is not None:
                stats[band_name] = dict(mean=float(entry['mean']), std=float(entry['std']))
            elif band.mean is not None and band.std is not None:
                stats[band_name] = dict(mean=band.mean, std=band.std)
        if not selected or len(stats) != len(selected):
            continue  # e.g. hyperspectral without a statistics file: not usable by the exported model
        band_stats[name], sensor_bands[name] = stats, selected
        band_groups[name] = [[g, list(m)] for g, m in (groups.get(name) or get_sensor(name).default_groups)]
    return sensor_bands, band_stats, band_groups


def preprocessing_from_config(cfg, model):
    """The preprocessing settings of the config's data pipeline, as exported into ``preprocessor_config.json``."""
    steps = _pipeline_steps(cfg)
    tiling = steps.get('TileGroups') or steps.get('DynamicTiling')
    encode = steps.get('EncodeConversation')
    if tiling is None or encode is None:
        raise ValueError(f'The pipeline needs DynamicTiling/TileGroups and EncodeConversation, has {list(steps)}')
    template = get_template(encode['template'])
    normalize = steps.get('NormalizeImage', {})
    loader = steps.get('LoadMultiSensorImages', {})
    grouper = steps.get('GroupBands', {})
    stats_file = steps.get('NormalizeBands', {}).get('stats_file')
    sensor_bands, band_stats, band_groups = _sensor_entries(loader.get('bands') or {}, stats_file,
                                                            grouper.get('groups') or {})
    fusion = model.band_fusion
    grounding = None
    if model.grounding_head is not None:
        if 'MakeGroundingImage' not in steps:
            raise ValueError('The model has a grounding head but the pipeline has no MakeGroundingImage step: the '
                             'picture SAM2 sees cannot be exported')
        grounding = {k: list(v) if isinstance(v, tuple) else v for k, v in steps['MakeGroundingImage'].items()
                     if k != 'type'}
    return dict(
        pipeline='multisensor' if 'LoadMultiSensorImages' in steps else 'rgb',
        tile_size=int(tiling['tile_size']), min_tiles=int(tiling['min_tiles']), max_tiles=int(tiling['max_tiles']),
        use_thumbnail=bool(tiling['use_thumbnail']), tokens_per_tile=model.tokens_per_tile,
        max_length=int(encode['max_length']), template=dict(vars(template), stop_words=list(template.stop_words)),
        sensor_tokens=bool(encode.get('sensor_tokens', False)), task_tokens=bool(encode.get('task_tokens', False)),
        group_fusion=fusion.group_fusion, date_fusion=fusion.date_fusion, band_group_vocab=fusion.band_group_vocab,
        rgb_mean=list(normalize.get('mean', IMAGENET_MEAN)), rgb_std=list(normalize.get('std', IMAGENET_STD)),
        sensor_bands=sensor_bands, band_stats=band_stats, band_groups=band_groups,
        img_context_token_id=image_context_token_id(model.tokenizer), grounding=grounding)


def merge_lora(model):
    """Merge LoRA adapters of the ViT and the LLM into their weights (peft ``merge_and_unload``), in place."""
    for name in ('vision_model', 'language_model'):
        module = getattr(model, name)
        if isinstance(module, PeftModel):
            setattr(model, name, module.merge_and_unload())
    return model


def build_model(cfg):
    """Build the training model of an mmengine config (``cfg.model``)."""
    model = MODELS.build(cfg.model)
    model.eval()
    return model


def vision_fields(model_cfg):
    """InternViT constructor fields of the config's vision encoder (its config dict, or the InternVL folder's)."""
    encoder = model_cfg.get('vision_encoder')
    accepted = set(inspect.signature(InternViT).parameters)
    if isinstance(encoder, dict) and encoder.get('type') in (InternViT, 'InternViT'):
        return {k: v for k, v in encoder.items() if k in accepted}
    source = model_cfg.get('pretrained_internvl') or encoder
    folder = source if isinstance(source, str) else (source or {}).get('folder')
    if folder is None:
        raise ValueError('Cannot tell the vision encoder\'s fields: give vision_encoder=dict(type=InternViT, ...), '
                         'an InternViT folder or pretrained_internvl')
    config = read_json(os.path.join(folder, CONFIG_FILE))
    config = config.get('vision_config', config)
    return {k: v for k, v in config.items() if k in accepted}


def hf_config(model, model_cfg, preprocessing):
    """The :class:`EarthMindConfig` of a merged training model built from ``model_cfg``."""
    vision_config = vision_fields(model_cfg)
    vision_config['attn_implementation'] = model.vision_model.attn_implementation
    vision_config['drop_path_rate'] = 0.0
    llm_config = model.language_model.config.to_dict()
    llm_config['attn_implementation'] = model.language_model.config._attn_implementation
    llm_config['vocab_size'] = model.language_model.get_input_embeddings().num_embeddings
    fusion = model.band_fusion
    fusion_config = dict(band_group_vocab=list(fusion.band_group_vocab), group_modalities=fusion.group_modality,
                         group_fusion=fusion.group_fusion, date_fusion=fusion.date_fusion,
                         max_dates=fusion.max_dates, date_offset_encoding=fusion.date_offset_encoding,
                         scorer_hidden_size=model_cfg.get('fusion_scorer_hidden_size', 64))
    # The training run's stop words when its config names them, else the chat template's.
    stop_ids = model.generation_cfg.get('stop_token_ids')
    stop_words = (model.tokenizer.convert_ids_to_tokens(stop_ids) if stop_ids else
                  [w for w in preprocessing['template']['stop_words'] if w in model.tokenizer.get_vocab()])
    generation = dict(max_new_tokens=model.generation_cfg.get('max_new_tokens', 64), stop_words=stop_words)
    head = model_cfg.get('grounding_head')
    grounding_config = None
    if head is not None:
        grounding_config = dict(config_name=head['config_name'],
                                hydra_overrides=list(head.get('hydra_overrides') or []))
    return EarthMindConfig(vision_config=vision_config, llm_config=llm_config, fusion_config=fusion_config,
                           downsample_ratio=model.downsample_ratio, select_layer=model.select_layer,
                           preprocessing=preprocessing, generation=generation, grounding_config=grounding_config,
                           auto_map=dict(_AUTO_MAP),
                           architectures=['EarthMindForConditionalGeneration'])


def export_to_hf(cfg, checkpoint, save_path, max_shard_size='2GB', logger=None):
    """Convert a training checkpoint into a Hugging Face folder.

    Args:
        cfg (mmengine.Config): The training (or test) config: its ``model`` and its data pipeline.
        checkpoint (str): mmengine ``.pth`` file or DeepSpeed ZeRO-1/2 checkpoint folder.
        save_path (str): Output folder (created).
        max_shard_size (str | int): Largest safetensors shard.
        logger: mmengine logger for the load report.

    Returns:
        EarthMindForConditionalGeneration: The exported model (float weights as trained, eval mode).

    Raises:
        RuntimeError: When the checkpoint does not fit the config (missing and unexpected keys are listed).
        FileNotFoundError: When the checkpoint does not exist.
    """
    model = build_model(cfg)
    load_test_checkpoint(model, checkpoint, logger=logger)
    merge_lora(model)
    preprocessing = preprocessing_from_config(cfg, model)
    config = hf_config(model, cfg.model, preprocessing)
    hf_model = EarthMindForConditionalGeneration(config)
    result = hf_model.load_state_dict(model.state_dict(), strict=False)
    tied = set(hf_model._tied_weights_keys) if config.tie_word_embeddings else set()
    missing = sorted(set(result.missing_keys) - tied)
    if missing or result.unexpected_keys:
        raise RuntimeError(f'The merged model does not fit the export model: missing {missing}, '
                           f'unexpected {sorted(result.unexpected_keys)}')
    hf_model.tie_weights()
    hf_model.eval()
    os.makedirs(save_path, exist_ok=True)
    hf_model.save_pretrained(save_path, max_shard_size=max_shard_size, safe_serialization=True)
    model.tokenizer.save_pretrained(save_path)
    GenerationConfig(max_new_tokens=config.generation['max_new_tokens'], do_sample=False, num_beams=1,
                     eos_token_id=hf_model.stop_token_ids(model.tokenizer),
                     pad_token_id=model.tokenizer.pad_token_id).save_pretrained(save_path)
    with open(os.path.join(save_path, PREPROCESSOR_FILE), 'w', encoding='utf-8') as f:
        json.dump(preprocessing, f, indent=2)
        f.write('\n')
    write_modeling_bundle(save_path)
    hf_model.tokenizer = model.tokenizer
    return hf_model

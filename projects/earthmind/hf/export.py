"""Export a trained EarthMind model as a self-contained Hugging Face folder.

:func:`export_to_hf` builds the model from its mmengine config, loads a checkpoint strictly
(``load_test_checkpoint``: mmengine ``.pth`` or a DeepSpeed ZeRO-1/2 folder), merges LoRA into the base weights,
and writes sharded safetensors, ``config.json`` (the core's description, with ``auto_map``), the processor
(``processor_config.json`` + tokenizer files), ``generation_config.json`` and the modeling code: the package's own
modules (``bundle.py``), plus the LLM's modeling files for a family ``transformers`` does not ship.
"""
import os
import shutil

from peft import PeftModel
from transformers import GenerationConfig

from projects.earthmind.engine.checkpoint_loading import load_test_checkpoint
from projects.earthmind.models.core_config import core_config
from projects.earthmind.models.language_models import llm_code_files
from projects.earthmind.registry import MODELS

from .bundle import write_modeling_bundle
from .configuration_earthmind import EarthMindConfig
from .modeling_earthmind import EarthMindForConditionalGeneration

MODEL_AUTO_MAP = {'AutoConfig': 'configuration_earthmind.EarthMindConfig',
                  'AutoModel': 'modeling_earthmind.EarthMindForConditionalGeneration',
                  'AutoModelForCausalLM': 'modeling_earthmind.EarthMindForConditionalGeneration'}
PROCESSOR_AUTO_MAP = {'AutoProcessor': 'processing_earthmind.EarthMindProcessor'}


def merge_lora(model):
    """Merge LoRA adapters of the ViT and the LLM into their weights (peft ``merge_and_unload``), in place."""
    core = model.core
    for name in ('vision_model', 'language_model'):
        module = getattr(core, name)
        if isinstance(module, PeftModel):
            setattr(core, name, module.merge_and_unload())
    return model


def build_model(cfg):
    """Build the training model of an mmengine config (``cfg.model``), in eval mode."""
    model = MODELS.build(cfg.model)
    model.eval()
    return model


def export_to_hf(cfg, checkpoint, save_path, max_shard_size='2GB', logger=None, trust_checkpoint=False):
    """Convert a training checkpoint into a Hugging Face folder.

    Args:
        cfg (mmengine.Config): The training (or test) config: its ``model`` (with the processor).
        checkpoint (str): mmengine ``.pth`` file, DeepSpeed ZeRO-1/2 checkpoint folder, or a training work dir (the
            checkpoint its ``last_checkpoint`` names).
        save_path (str): Output folder (created).
        max_shard_size (str | int): Largest safetensors shard.
        logger: mmengine logger for the load report.
        trust_checkpoint (bool): Unpickle the checkpoint fully instead of weights-only (it can run code).

    Returns:
        EarthMindForConditionalGeneration: The exported model (float weights as trained, eval mode).

    Raises:
        RuntimeError: When the checkpoint does not fit the config (missing and unexpected keys are listed).
        FileNotFoundError: When the checkpoint does not exist.
        CheckpointError: When the checkpoint is unreadable, or names a class outside the allow-list (a RuntimeError).
    """
    model = build_model(cfg)
    load_test_checkpoint(model, checkpoint, logger=logger, trust=trust_checkpoint)
    return save_hf_folder(model, save_path, max_shard_size)


def save_hf_folder(model, save_path, max_shard_size='2GB'):
    """Write a built (and loaded) training model as a Hugging Face folder, LoRA merged.

    Args:
        model (EarthMindModel): The model; its LoRA adapters are merged in place.
        save_path (str): Output folder (created).
        max_shard_size (str | int): Largest safetensors shard.

    Returns:
        EarthMindForConditionalGeneration: The exported model (eval mode).
    """
    merge_lora(model)
    llm_files, llm_auto_map = llm_code_files(model.core.llm)
    os.makedirs(save_path, exist_ok=True)
    for path in llm_files:
        shutil.copy(path, save_path)
    processor = model.processor
    generation = dict(max_new_tokens=model.generation_cfg['max_new_tokens'],
                      stop_words=processor.tokenizer.convert_ids_to_tokens(model.stop_token_ids))
    config = EarthMindConfig(core=core_config(model.core, llm_auto_map), generation=generation,
                             auto_map=dict(MODEL_AUTO_MAP), architectures=[EarthMindForConditionalGeneration.__name__],
                             name_or_path=save_path)
    hf_model = EarthMindForConditionalGeneration(config)
    result = hf_model.core.load_state_dict(model.core.state_dict(), strict=False)
    tied = {key.removeprefix('core.') for key in hf_model._tied_weights_keys} if config.tie_word_embeddings else set()
    missing = sorted(set(result.missing_keys) - tied)
    if missing or result.unexpected_keys:
        raise RuntimeError(f'The merged model does not fit the export model: missing {missing}, '
                           f'unexpected {sorted(result.unexpected_keys)}')
    hf_model.tie_weights()
    hf_model.eval()
    hf_model.config.name_or_path = ''  # the folder it is loaded from sets it; a build-time path is not saved
    hf_model.save_pretrained(save_path, max_shard_size=max_shard_size, safe_serialization=True)
    processor.save_pretrained(save_path, auto_map=PROCESSOR_AUTO_MAP)
    GenerationConfig(max_new_tokens=generation['max_new_tokens'], do_sample=False, num_beams=1,
                     eos_token_id=model.stop_token_ids, pad_token_id=processor.pad_token_id).save_pretrained(save_path)
    write_modeling_bundle(save_path)
    hf_model.processor = processor
    return hf_model

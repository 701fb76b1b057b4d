"""Tiny stand-ins, in the real file formats, for the weights and data the published recipes read.

- an InternVL folder (``config.json`` + sharded safetensors with an index + tokenizer files) with a tiny ViT at the
  real 448 px / 14 px geometry (so the recipes' 256 tokens per tile hold) and a tiny Qwen2 or Phi-3 LLM;
- a SAM2 ``{"model": state_dict}`` ``.pt`` of the tiny SAM2.1 of ``configs/_base_/models/sam2_tiny_grounding.py``;
- record files at the paths a recipe's datasets name, copied from the generated sample dataset, and a COCO
  instances + referring-expressions pair made from the sample's referring-segmentation records.
"""
import json
import os
import os.path as osp

import rasterio
import torch
from mmengine.config import Config
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from projects.earthmind.models.checkpoints.internvl import build_internvl_modules
from tests.models.internvl_folder import write_internvl_folder

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SAM2_TINY_BASE = osp.join(REPO_ROOT, 'configs', '_base_', 'models', 'sam2_tiny_grounding.py')

TINY_VIT_448 = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, image_size=448,
                    patch_size=14, qkv_bias=True, qk_normalization=False, norm_type='layer_norm',
                    layer_norm_eps=1e-6, hidden_act='gelu', drop_path_rate=0.1)
TINY_LLMS = {
    'qwen2': dict(model_type='qwen2', architectures=['Qwen2ForCausalLM'], hidden_size=64, intermediate_size=128,
                  num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                  tie_word_embeddings=False, rope_theta=1000000.0),
    'phi3': dict(model_type='phi3', architectures=['Phi3ForCausalLM'], hidden_size=64, intermediate_size=128,
                 num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=4096,
                 original_max_position_embeddings=4096, tie_word_embeddings=False),
}
# Chat markers of each family's real tokenizer, added to the sample tokenizer as special tokens.
CHAT_TOKENS = {
    'qwen2': [],
    'phi3': ['<|system|>', '<|user|>', '<|assistant|>', '<|end|>'],
}
TEMPLATES = {'qwen2': 'internvl2_5', 'phi3': 'phi3-chat'}  # as in the published config.json files
# Special tokens of the published InternVL tokenizers the processor relies on: each family's chat markers (pad and
# end-of-text first) and the image tokens InternVL adds.
PUBLISHED_SPECIAL_TOKENS = {
    'qwen2': ['<|endoftext|>', '<|im_start|>', '<|im_end|>', '<img>', '</img>', '<IMG_CONTEXT>'],
    'phi3': ['<|endoftext|>', '<|system|>', '<|user|>', '<|assistant|>', '<|end|>', '<img>', '</img>',
             '<IMG_CONTEXT>'],
}

# Which generated sample file stands in for each record file the recipes name.
SAMPLE_FILE_FOR = {
    'geochat_instruct_train.json': 'classification_train.json',
    'rsicd_train.json': 'classification_train.json',
    'nwpu_captions_train.json': 'classification_train.json',
    'sar_instruct_train.json': 'sar_train.json',
    'bigearthnet_train.json': 'multispectral_train.json',
    'levir_cc_train.json': 'change_train.json',
    'region_caption_train.json': 'region_prompt_train.json',
    # EarthMind's SFT mix from EarthMind-Pretrain
    'vrsbench_vqa_train.json': 'classification_train.json',
    'earthgpt_vqa_train.json': 'classification_train.json',
    'geochat_vqa_train.json': 'classification_train.json',
    'ms_vqa_train.json': 'multispectral_train.json',
    'rsvg_region_caption_train.json': 'region_prompt_train.json',
    'geochat_region_train.json': 'region_prompt_train.json',
    'sar_pair_vqa_train.json': 'pair_train.json',
}


def write_internvl_standin(folder, llm_family, tokenizer_dir):
    """Write a tiny InternVL folder (config, 2 safetensors shards + index, tokenizer) into ``folder``."""
    os.makedirs(folder, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    if CHAT_TOKENS[llm_family]:
        tokenizer.add_special_tokens({'additional_special_tokens': CHAT_TOKENS[llm_family]},
                                     replace_additional_special_tokens=False)
    tokenizer.save_pretrained(folder)
    special_ids = dict(pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.eos_token_id,
                       eos_token_id=tokenizer.eos_token_id)
    llm_config = dict(TINY_LLMS[llm_family], vocab_size=len(tokenizer), torch_dtype='bfloat16', **special_ids)
    config = dict(architectures=['InternVLChatModel'], model_type='internvl_chat', downsample_ratio=0.5,
                  select_layer=-1, template=TEMPLATES[llm_family], force_image_size=448,
                  vision_config=dict(TINY_VIT_448, architectures=['InternVisionModel'], model_type='intern_vit_6b'),
                  llm_config=llm_config)
    torch.manual_seed(0)
    parts = build_internvl_modules(config)
    tensors = {}
    for prefix, module in (('vision_model.', parts.vision_model), ('mlp1.', parts.projector),
                           ('language_model.', parts.llm)):
        tensors.update({prefix + k: v.detach().to(torch.bfloat16) for k, v in module.state_dict().items()})
    return write_internvl_folder(folder, tensors, config, num_shards=2)


def write_published_tokenizer(folder, llm_family, size):
    """Save a word-level tokenizer of exactly ``size`` tokens (a published InternVL tokenizer's length) holding the
    family's special tokens of :data:`PUBLISHED_SPECIAL_TOKENS` (the last ids) into ``folder``."""
    special = PUBLISHED_SPECIAL_TOKENS[llm_family]
    vocab = {f'w{i}': i for i in range(size - len(special))}
    vocab.update({token: len(vocab) + i for i, token in enumerate(special)})
    backend = Tokenizer(models.WordLevel(vocab, unk_token='w0'))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token='w0', pad_token=special[0],
                                        eos_token=special[0], additional_special_tokens=special[1:])
    assert len(tokenizer) == size
    tokenizer.save_pretrained(folder)
    return tokenizer


def tiny_sam2_settings():
    """``config_name`` and ``hydra_overrides`` of the tiny SAM2.1 base."""
    base = Config.fromfile(SAM2_TINY_BASE)
    return base.sam2_config, list(base.sam2_overrides)


def write_sam2_standin(path):
    """Save the tiny SAM2.1 (random weights) as an official-style ``{"model": state_dict}`` checkpoint."""
    from sam2.build_sam import build_sam2
    config_name, overrides = tiny_sam2_settings()
    torch.manual_seed(0)
    sam2 = build_sam2(config_name, ckpt_path=None, device='cpu', mode='train', hydra_overrides_extra=overrides,
                      apply_postprocessing=False)
    os.makedirs(osp.dirname(path), exist_ok=True)
    torch.save({'model': sam2.state_dict()}, path)
    return path


def _link_images(sample_dir, data_root):
    os.makedirs(data_root, exist_ok=True)
    link = osp.join(data_root, 'images')
    if not osp.exists(link):
        os.symlink(osp.join(sample_dir, 'images'), link)


# Iterations per epoch of the stand-in data: enough for the recipes' 3 % warm-up to span at least one iteration
# (mmengine refuses an empty warm-up).
MIN_ITERS_PER_EPOCH = 40


def _repeat(records, count):
    """``records`` repeated to at least ``count`` entries, ids made unique."""
    out = []
    while len(out) < count:
        copy = len(out) // len(records)
        out.extend(dict(r, id=f'{r["id"]}_copy{copy}') if 'id' in r else dict(r) for r in records)
    return out


def write_coco_refs(sample_dir, data_root, instances_file, refs_file, image_prefix, split, count):
    """COCO instances + referring expressions made from the sample's one-mask ``refseg_train.json`` records."""
    with open(osp.join(sample_dir, 'refseg_train.json'), encoding='utf-8') as f:
        records = [r for r in json.load(f) if len(r['masks']) == 1]
    images, annotations, refs = [], [], []
    prefix = image_prefix.rstrip('/') + '/'
    for number, record in enumerate(records, start=1):
        with rasterio.open(osp.join(sample_dir, record['image'])) as src:
            height, width = src.height, src.width
        images.append(dict(id=number, file_name=record['image'][len(prefix):], height=height, width=width))
        annotations.append(dict(id=number, image_id=number, segmentation=record['masks'][0], category_id=1,
                                iscrowd=0))
        expression = record['conversations'][0]['value'].split('segment ', 1)[1].rstrip('.')
        refs.append(dict(image_id=number, ann_id=number, split=split, sentences=[dict(sent=expression)]))
    refs = [dict(ref, ref_id=number) for number, ref in enumerate(_repeat(refs, count), start=1)]
    with open(osp.join(data_root, instances_file), 'w', encoding='utf-8') as f:
        json.dump(dict(images=images, annotations=annotations, categories=[dict(id=1, name='square')]), f)
    with open(osp.join(data_root, refs_file), 'w', encoding='utf-8') as f:
        json.dump(refs, f)


def write_recipe_data(cfg, sample_dir, workspace):
    """Lay out tiny data at every path the recipe's training datasets read (relative to ``workspace``)."""
    datasets = cfg.train_dataloader.dataset.datasets
    count = -(-MIN_ITERS_PER_EPOCH * cfg.train_dataloader.batch_size // len(datasets))
    for dataset in datasets:
        data_root = osp.join(workspace, dataset['data_root'])
        _link_images(sample_dir, data_root)
        if 'instances_file' in dataset:
            write_coco_refs(sample_dir, data_root, dataset['instances_file'], dataset['refs_file'],
                            dataset['image_prefix'], dataset['split'], count)
        else:
            with open(osp.join(sample_dir, SAMPLE_FILE_FOR[dataset['data_file']]), encoding='utf-8') as f:
                records = _repeat(json.load(f), count)
            with open(osp.join(data_root, dataset['data_file']), 'w', encoding='utf-8') as f:
                json.dump(records, f)

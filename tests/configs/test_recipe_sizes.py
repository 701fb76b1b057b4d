"""The published recipes build at their real sizes on the meta device; parameter counts against the model cards.

InternVL folders are not available here, so the recipe's ``pretrained_internvl`` loader is swapped for one with
the same signature that builds the parts from a ``config.json``-only folder holding the published architecture
(no weights: every tensor is on the meta device). The SAM2.1 Hiera-L head is built for real on the CPU (the
``sam2`` package moves its model to a device, which meta tensors cannot do) without its checkpoint.
"""
import json
import os.path as osp
import shutil

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS

from projects.earthmind.models.checkpoints.internvl import CONFIG_FILE, build_internvl_modules, read_json
from projects.earthmind.models.heads.sam2_grounding_head import SAM2GroundingHead
from tests.models.test_param_counts import INTERNVIT_300M, PHI3_MINI, QWEN25_3B_INSTRUCT

from .standins import REPO_ROOT

EARTHMIND_SFT = osp.join(REPO_ROOT, 'configs', 'earthmind', 'earthmind_internvl2_5_4b_sam2l_8xb2_1e_eo_mix.py')
EARTHDIAL_STAGE1 = osp.join(REPO_ROOT, 'configs', 'earthdial', 'earthdial_internvl2_4b_8xb4_1e_stage1_pairs.py')

# Published parts (tests/models/test_param_counts.py derives each figure by hand).
INTERNVIT_300M_PARAMS = 304_012_288
INTERNVL2_5_4B_PARAMS = 3_712_637_952  # + mlp1 12,595,200 + Qwen2.5-3B 3,396,030,464: "about 3.7 B"
INTERNVL2_4B_PARAMS = 4_146_855_936  # + mlp1 22,034,432 + Phi-3-mini 3,820,809,216: "about 4.15 B"
# LoRA r=128 on q,k,v,o,gate,up,down of 36 Qwen2.5-3B layers: r * (in + out) per layer and linear,
# 128 * (2*(2048+2048) + 2*(2048+256) + 3*(2048+11008)) = 6,651,904 per layer.
LORA_PARAMS = 36 * 6_651_904  # 239,468,544
# Trainable copies of the input embeddings and the output head (peft modules_to_save): 2 x 151,674 x 2048.
EMBEDDING_COPIES = 2 * 151_674 * 2048  # 621,256,704
# SAM2.1 Hiera-L as built by the sam2 package (image encoder 212,703,280, memory attention 5,922,304, memory
# encoder 1,384,608, mask decoder 4,215,109, prompt encoder 6,220, object-pointer projections 213,824, mask
# downsample 17) and the [SEG] projection Linear(2048, 2048) + ReLU + Linear(2048, 256) = 4,720,896.
SAM2_1_HIERA_L_PARAMS = 224_446_642
SEG_PROJECTION_PARAMS = 2048 * 2048 + 2048 + 2048 * 256 + 256
SAM2_TRAINABLE = 4_215_109 + SEG_PROJECTION_PARAMS
# Band fusion at ViT width 1024, 'attention' group fusion over the 9-group vocabulary, two modalities: group
# embedding 9 x 1024 + 3 scorers (group, optical gate, SAR gate) x (LayerNorm 2048 + Linear(1024, 64) 65,600 +
# Linear(64, 1) 65) + date embedding max_dates x 1024.
BAND_FUSION_PARAMS = {2: 9 * 1024 + 3 * 67_713 + 2 * 1024, 4: 9 * 1024 + 3 * 67_713 + 4 * 1024}  # 214,403 / 216,451
EARTHMIND_TOTAL = 4_802_745_141  # InternVL2.5-4B + LoRA + embedding copies + band fusion + SAM2.1-L head
EARTHMIND_TRAINABLE = 882_470_856  # LoRA + embedding copies + mlp1 + band fusion + mask decoder + [SEG] projection
EARTHDIAL_TOTAL = 4_147_072_387  # InternVL2-4B + band fusion


def config_only_internvl(folder, attn_implementation='sdpa', torch_dtype=None, drop_path_rate=None):
    """``load_internvl_checkpoint``'s signature, building the parts from ``config.json`` alone (no weights)."""
    config = read_json(osp.join(folder, CONFIG_FILE))
    return build_internvl_modules(config, attn_implementation, torch_dtype, drop_path_rate)


def _published_folder(path, llm_config, sample_dir):
    path.mkdir()
    config = dict(vision_config=INTERNVIT_300M, llm_config=llm_config, downsample_ratio=0.5, select_layer=-1)
    (path / CONFIG_FILE).write_text(json.dumps(config))
    for name in ('tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'):
        shutil.copy(osp.join(sample_dir, 'tokenizer', name), path / name)
    return str(path)


def _meta_model(recipe, folder, grounding_head=None):
    cfg = Config.fromfile(recipe)
    cfg.model.pretrained_internvl.type = config_only_internvl
    cfg.model.pretrained_internvl.folder = folder
    cfg.model.tokenizer.pretrained_model_name_or_path = folder
    if grounding_head is not None:
        cfg.model.grounding_head = grounding_head
    with torch.device('meta'):
        return MODELS.build(cfg.model)


def _count(module, trainable=None):
    return sum(p.numel() for p in module.parameters() if trainable is None or p.requires_grad == trainable)


def _base_counts(model):
    """Parameters of the InternVL parts without LoRA and without the trainable copies peft adds."""
    total = 0
    for name, param in list(model.vision_model.named_parameters()) + list(model.mlp1.named_parameters()) + \
            list(model.language_model.named_parameters()):
        if 'lora_' not in name and 'modules_to_save' not in name:
            total += param.numel()
    return total


def test_earthmind_sft_model_at_published_size(tmp_path, sample_dir):
    cfg = Config.fromfile(EARTHMIND_SFT)
    head_cfg = cfg.model.grounding_head.to_dict()
    assert head_cfg['config_name'] == 'configs/sam2.1/sam2.1_hiera_l.yaml' and not head_cfg['hydra_overrides']
    head_cfg.pop('type')
    head = SAM2GroundingHead(**dict(head_cfg, checkpoint=None), llm_hidden_size=QWEN25_3B_INSTRUCT['hidden_size'])
    folder = _published_folder(tmp_path / 'InternVL2_5-4B', QWEN25_3B_INSTRUCT, sample_dir)
    model = _meta_model(EARTHMIND_SFT, folder, grounding_head=head)

    assert _count(model.vision_model) == INTERNVIT_300M_PARAMS
    assert _base_counts(model) == INTERNVL2_5_4B_PARAMS
    assert _base_counts(model) == pytest.approx(3.7e9, rel=0.01)
    assert _count(model.grounding_head.sam2) == SAM2_1_HIERA_L_PARAMS
    assert _count(model.grounding_head.text_to_prompt) == SEG_PROJECTION_PARAMS
    lora = sum(p.numel() for n, p in model.language_model.named_parameters() if 'lora_' in n)
    copies = sum(p.numel() for n, p in model.language_model.named_parameters() if 'modules_to_save' in n)
    assert lora == LORA_PARAMS and copies == EMBEDDING_COPIES
    # Trainable: LoRA, embedding copies, projector, band fusion, SAM2 mask decoder + [SEG] projection; the ViT,
    # the LLM's base weights and SAM2's image encoder are frozen.
    assert _count(model.vision_model, trainable=True) == 0
    assert _count(model.grounding_head.sam2.image_encoder, trainable=True) == 0
    assert _count(model.grounding_head, trainable=True) == SAM2_TRAINABLE
    assert _count(model.language_model, trainable=True) == LORA_PARAMS + EMBEDDING_COPIES
    assert _count(model.mlp1, trainable=True) == 12_595_200
    assert _count(model.band_fusion) == BAND_FUSION_PARAMS[2]
    assert _count(model, trainable=True) == (LORA_PARAMS + EMBEDDING_COPIES + 12_595_200 + BAND_FUSION_PARAMS[2]
                                             + SAM2_TRAINABLE) == EARTHMIND_TRAINABLE
    assert _count(model) == (INTERNVL2_5_4B_PARAMS + LORA_PARAMS + EMBEDDING_COPIES + BAND_FUSION_PARAMS[2]
                             + SAM2_1_HIERA_L_PARAMS + SEG_PROJECTION_PARAMS) == EARTHMIND_TOTAL
    # bf16 weights; peft keeps the LoRA matrices in fp32 (its adapter autocast).
    assert all(p.dtype == (torch.float32 if 'lora_' in n else torch.bfloat16) for n, p in model.named_parameters())


def test_earthdial_model_at_published_size(tmp_path, sample_dir):
    folder = _published_folder(tmp_path / 'InternVL2-4B', PHI3_MINI, sample_dir)
    model = _meta_model(EARTHDIAL_STAGE1, folder)
    assert _count(model.vision_model) == INTERNVIT_300M_PARAMS
    assert _base_counts(model) == INTERNVL2_4B_PARAMS
    assert _base_counts(model) == pytest.approx(4.15e9, rel=0.01)
    assert model.grounding_head is None
    assert _count(model.band_fusion) == BAND_FUSION_PARAMS[4]
    assert _count(model) == INTERNVL2_4B_PARAMS + BAND_FUSION_PARAMS[4] == EARTHDIAL_TOTAL
    # Stage 1 trains everything.
    assert _count(model, trainable=False) == 0
    assert all(p.is_meta and p.dtype == torch.bfloat16 for p in model.parameters())

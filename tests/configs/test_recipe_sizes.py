"""The published recipes build at their real sizes on the meta device; parameter counts against the model cards.

InternVL folders are not available here, so the recipe's ``pretrained`` folder is a ``config.json``-only folder
holding the published architecture, read with ``load_weights=False`` (no weights: every tensor is on the meta
device) and a stand-in tokenizer of the published tokenizer's length, so
the processor's added tokens grow the embedding and the output head as they do with the real folder. The SAM2.1
Hiera-L head is built for real on the CPU (the ``sam2`` package moves its model to a device, which meta tensors cannot
do) without its checkpoint.
"""
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS
from transformers import PreTrainedModel

from projects.earthmind.datasets.processing_earthmind import EarthMindProcessor
from projects.earthmind.models.checkpoints.internvl import CONFIG_FILE
from projects.earthmind.models.heads.sam2_grounding_head import SAM2GroundingHead
from tests.models.test_param_counts import INTERNVIT_300M, PHI3_MINI, QWEN25_3B_INSTRUCT

from .standins import REPO_ROOT, TEMPLATES, write_published_tokenizer

EARTHMIND_SFT = osp.join(REPO_ROOT, 'configs', 'earthmind', 'earthmind_internvl2_5_4b_sam2l_8xb2_1e_eo_mix.py')
EARTHDIAL_STAGE1 = osp.join(REPO_ROOT, 'configs', 'earthdial', 'earthdial_internvl2_4b_8xb4_1e_stage1_pairs.py')

# Published parts (tests/models/test_param_counts.py derives each figure by hand).
INTERNVIT_300M_PARAMS = 304_012_288
# The published tokenizers hold as many tokens as the LLM has embedding rows and already carry InternVL's image tokens
# (<img>, </img>, <IMG_CONTEXT>); the processor adds the other 20 of its tokens: 8 sensor tokens + [SEG] +
# <VP_CONTEXT> + 10 task tokens. The model grows the input embedding and the (untied) output head by 20 rows each.
ADDED_TOKENS = 20
QWEN25_VOCAB, PHI3_VOCAB = 151_674, 32_020  # vocab_size of the published llm_config = len(tokenizer)
QWEN25_GROWTH = 2 * ADDED_TOKENS * 2048  # 81,920: 20 rows of width 2048 in the embedding and in the head
PHI3_GROWTH = 2 * ADDED_TOKENS * 3072  # 122,880: 20 rows of width 3072 in the embedding and in the head
# InternViT-300M + mlp1 12,595,200 + Qwen2.5-3B 3,396,030,464 = 3,712,637,952 ("about 3.7 B"), + 81,920 grown rows.
INTERNVL2_5_4B_PARAMS = 3_712_637_952 + QWEN25_GROWTH  # 3,712,719,872
# InternViT-300M + mlp1 22,034,432 + Phi-3-mini 3,820,809,216 = 4,146,855,936 ("about 4.15 B"), + 122,880 grown rows.
INTERNVL2_4B_PARAMS = 4_146_855_936 + PHI3_GROWTH  # 4,146,978,816
# LoRA r=128 on q,k,v,o,gate,up,down of 36 Qwen2.5-3B layers: r * (in + out) per layer and linear,
# 128 * (2*(2048+2048) + 2*(2048+256) + 3*(2048+11008)) = 6,651,904 per layer.
LORA_PARAMS = 36 * 6_651_904  # 239,468,544
# Trainable copies of the grown input embeddings and output head (peft modules_to_save): 2 x 151,694 x 2048.
EMBEDDING_COPIES = 2 * (QWEN25_VOCAB + ADDED_TOKENS) * 2048  # 621,338,624
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
# InternVL2.5-4B 3,712,719,872 + LoRA 239,468,544 + embedding copies 621,338,624 + band fusion 214,403 + SAM2.1-L
# 224,446,642 + [SEG] projection 4,720,896 (4,802,745,141 without the grown rows: + 2 x 81,920).
EARTHMIND_TOTAL = 4_802_908_981
# LoRA + embedding copies + mlp1 12,595,200 + band fusion + mask decoder 4,215,109 + [SEG] projection (882,470,856
# without the grown rows: + 81,920 in the copies).
EARTHMIND_TRAINABLE = 882_552_776
# InternVL2-4B 4,146,978,816 + band fusion 216,451 (4,147,072,387 without the grown rows).
EARTHDIAL_TOTAL = 4_147_195_267


@pytest.fixture(autouse=True)
def _resize_without_values(monkeypatch):
    """Grow embeddings without Hugging Face's mean/covariance initialisation of the new rows: meta tensors hold no
    values to take a covariance of (the shapes are the same)."""
    resize = PreTrainedModel.resize_token_embeddings

    def plain_resize(self, new_num_tokens=None, pad_to_multiple_of=None, mean_resizing=True):
        return resize(self, new_num_tokens, pad_to_multiple_of, mean_resizing=False)

    monkeypatch.setattr(PreTrainedModel, 'resize_token_embeddings', plain_resize)


def _published_folder(path, llm_config, llm_family):
    path.mkdir()
    config = dict(vision_config=INTERNVIT_300M, llm_config=llm_config, downsample_ratio=0.5, select_layer=-1,
                  template=TEMPLATES[llm_family], force_image_size=448)
    (path / CONFIG_FILE).write_text(json.dumps(config))
    write_published_tokenizer(str(path), llm_family, llm_config['vocab_size'])
    return str(path)


def _meta_model(recipe, folder, grounding_head=None):
    cfg = Config.fromfile(recipe)
    cfg.model.pretrained.update(path=folder, load_weights=False)
    cfg.model.processor.tokenizer = folder
    if grounding_head is not None:
        cfg.model.grounding_head = grounding_head
    with torch.device('meta'):
        return MODELS.build(cfg.model)


def _count(module, trainable=None):
    return sum(p.numel() for p in module.parameters() if trainable is None or p.requires_grad == trainable)


def _base_counts(model):
    """Parameters of the InternVL parts without LoRA and without the trainable copies peft adds."""
    total = 0
    core = model.core
    for name, param in list(core.vision_model.named_parameters()) + list(core.mlp1.named_parameters()) + \
            list(core.language_model.named_parameters()):
        if 'lora_' not in name and 'modules_to_save' not in name:
            total += param.numel()
    return total


def test_added_tokens():
    assert len(EarthMindProcessor.added_tokens()) - 3 == ADDED_TOKENS  # the image tokens are InternVL's own


def test_earthmind_sft_model_at_published_size(tmp_path):
    cfg = Config.fromfile(EARTHMIND_SFT)
    head_cfg = cfg.model.grounding_head.to_dict()
    assert head_cfg['config_name'] == 'configs/sam2.1/sam2.1_hiera_l.yaml' and not head_cfg['hydra_overrides']
    head_cfg.pop('type')
    head = SAM2GroundingHead(**dict(head_cfg, checkpoint=None), llm_hidden_size=QWEN25_3B_INSTRUCT['hidden_size'])
    assert QWEN25_3B_INSTRUCT['vocab_size'] == QWEN25_VOCAB
    folder = _published_folder(tmp_path / 'InternVL2_5-4B', QWEN25_3B_INSTRUCT, 'qwen2')
    model = _meta_model(EARTHMIND_SFT, folder, grounding_head=head)
    core = model.core

    assert len(model.tokenizer) == QWEN25_VOCAB + ADDED_TOKENS
    assert core.llm.get_input_embeddings().num_embeddings == QWEN25_VOCAB + ADDED_TOKENS
    assert core.llm.get_output_embeddings().out_features == QWEN25_VOCAB + ADDED_TOKENS
    assert _count(core.vision_model) == INTERNVIT_300M_PARAMS
    assert _base_counts(model) == INTERNVL2_5_4B_PARAMS
    assert _base_counts(model) == pytest.approx(3.7e9, rel=0.01)
    assert _count(core.grounding_head.sam2) == SAM2_1_HIERA_L_PARAMS
    assert _count(core.grounding_head.text_to_prompt) == SEG_PROJECTION_PARAMS
    lora = sum(p.numel() for n, p in core.language_model.named_parameters() if 'lora_' in n)
    copies = sum(p.numel() for n, p in core.language_model.named_parameters() if 'modules_to_save' in n)
    assert lora == LORA_PARAMS and copies == EMBEDDING_COPIES
    # Trainable: LoRA, embedding copies, projector, band fusion, SAM2 mask decoder + [SEG] projection; the ViT,
    # the LLM's base weights and SAM2's image encoder are frozen.
    assert _count(core.vision_model, trainable=True) == 0
    assert _count(core.grounding_head.sam2.image_encoder, trainable=True) == 0
    assert _count(core.grounding_head, trainable=True) == SAM2_TRAINABLE
    assert _count(core.language_model, trainable=True) == LORA_PARAMS + EMBEDDING_COPIES
    assert _count(core.mlp1, trainable=True) == 12_595_200
    assert _count(core.fusion) == BAND_FUSION_PARAMS[2]
    assert _count(model, trainable=True) == (LORA_PARAMS + EMBEDDING_COPIES + 12_595_200 + BAND_FUSION_PARAMS[2]
                                             + SAM2_TRAINABLE) == EARTHMIND_TRAINABLE
    assert _count(model) == (INTERNVL2_5_4B_PARAMS + LORA_PARAMS + EMBEDDING_COPIES + BAND_FUSION_PARAMS[2]
                             + SAM2_1_HIERA_L_PARAMS + SEG_PROJECTION_PARAMS) == EARTHMIND_TOTAL
    # bf16 weights; peft keeps the LoRA matrices in fp32 (its adapter autocast).
    assert all(p.dtype == (torch.float32 if 'lora_' in n else torch.bfloat16) for n, p in model.named_parameters())


def test_earthdial_model_at_published_size(tmp_path):
    assert PHI3_MINI['vocab_size'] == PHI3_VOCAB
    folder = _published_folder(tmp_path / 'InternVL2-4B', PHI3_MINI, 'phi3')
    model = _meta_model(EARTHDIAL_STAGE1, folder)
    core = model.core
    assert core.llm.get_input_embeddings().num_embeddings == PHI3_VOCAB + ADDED_TOKENS
    assert _count(core.vision_model) == INTERNVIT_300M_PARAMS
    assert _base_counts(model) == INTERNVL2_4B_PARAMS
    assert _base_counts(model) == pytest.approx(4.15e9, rel=0.01)
    assert core.grounding_head is None
    assert _count(core.fusion) == BAND_FUSION_PARAMS[4]
    assert _count(model) == INTERNVL2_4B_PARAMS + BAND_FUSION_PARAMS[4] == EARTHDIAL_TOTAL
    # Stage 1 trains everything.
    assert _count(model, trainable=False) == 0
    assert all(p.is_meta and p.dtype == torch.bfloat16 for p in model.parameters())

"""Full-size InternVL shapes built on the meta device (no memory) from their published config values."""
import pytest
import torch

from projects.earthmind.models.checkpoints.internvl import build_internvl_modules

INTERNVIT_300M = dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
                      image_size=448, patch_size=14, qkv_bias=True, qk_normalization=False, norm_type='layer_norm',
                      layer_norm_eps=1e-6, hidden_act='gelu')
QWEN25_3B_INSTRUCT = dict(model_type='qwen2', hidden_size=2048, intermediate_size=11008, num_hidden_layers=36,
                          num_attention_heads=16, num_key_value_heads=2, vocab_size=151674, tie_word_embeddings=False,
                          rope_theta=1000000.0, max_position_embeddings=32768, rms_norm_eps=1e-6)
PHI3_MINI = dict(model_type='phi3', hidden_size=3072, intermediate_size=8192, num_hidden_layers=32,
                 num_attention_heads=32, num_key_value_heads=32, vocab_size=32020, tie_word_embeddings=False)


def _count(config):
    with torch.device('meta'):
        parts = build_internvl_modules(dict(vision_config=INTERNVIT_300M, llm_config=config, downsample_ratio=0.5))
    modules = (parts.vision_model, parts.projector, parts.llm)
    assert all(p.is_meta for m in modules for p in m.parameters())
    unique = {id(p): p.numel() for m in modules for p in m.parameters()}
    return [sum(p.numel() for p in m.parameters()) for m in modules], sum(unique.values()), parts


# InternViT-300M = 304,012,288:
#   embeddings: CLS 1,024 + patch conv 3*14*14*1024 + 1024 = 603,136 + positions (1 + 32*32)*1024 = 1,049,600
#   24 layers x 12,598,272: qkv 3,148,800, proj 1,049,600, fc1 4,198,400, fc2 4,195,328, 2 norms 4,096, ls 2,048.
# mlp1 (4096 -> llm): LayerNorm 8,192 + Linear(4096, H) + Linear(H, H).


def test_internvl2_5_4b_parameter_count():
    # mlp1 (H=2048) = 12,595,200. Qwen2.5-3B (untied, vocab 151,674) = 3,396,030,464:
    #   embed + lm_head 2 x 310,628,352; 36 layers x 77,076,992 (q 4,196,352, k and v 524,544 each,
    #   o 4,194,304, gate/up/down 3 x 22,544,384, 2 norms 4,096); final norm 2,048.
    per_part, total, parts = _count(QWEN25_3B_INSTRUCT)
    assert per_part == [304_012_288, 12_595_200, 3_396_030_464]
    assert total == 3_712_637_952
    assert total == pytest.approx(3.7e9, rel=0.005)  # "about 3.7 B" on the model card
    assert parts.llm.lm_head.weight is not parts.llm.model.embed_tokens.weight


def test_internvl2_4b_parameter_count():
    # mlp1 (H=3072) = 22,034,432. Phi-3-mini (untied, vocab 32,020) = 3,820,809,216:
    #   embed + lm_head 2 x 98,365,440; 32 layers x 113,252,352 (qkv_proj 28,311,552, o_proj 9,437,184,
    #   gate_up_proj 50,331,648, down_proj 25,165,824, 2 norms 6,144); final norm 3,072.
    per_part, total, _ = _count(PHI3_MINI)
    assert per_part == [304_012_288, 22_034_432, 3_820_809_216]
    assert total == 4_146_855_936
    assert total == pytest.approx(4.15e9, rel=0.005)  # "about 4.15 B" on the model card

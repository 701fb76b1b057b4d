"""Fixtures of the model tests: a tiny trained byte-level BPE tokenizer and tiny model configs."""
import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from projects.earthmind.engine.stack_compat import apply_stack_patches
from projects.earthmind.models.encoders.intern_vit import InternViT
from projects.earthmind.models.fusion.band_fusion import BandFusion
from projects.earthmind.models.language_models import build_causal_lm
from tests.processors import tiny_processor

CHATML_TOKENS = ('<|endoftext|>', '<|im_start|>', '<|im_end|>')
BPE_VOCAB = 300

# The tiny numbers of the shared contract: 56 px tiles, 14 px patches, ratio 0.5 -> 4 tokens per tile.
TINY_VIT = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, image_size=56,
                patch_size=14, qkv_bias=True, qk_normalization=False, norm_type='layer_norm', layer_norm_eps=1e-6,
                hidden_act='gelu')
TINY_QWEN2 = dict(model_type='qwen2', vocab_size=BPE_VOCAB, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, intermediate_size=128, max_position_embeddings=512,
                  tie_word_embeddings=False)

_CORPUS = [
    'Which land-cover class is shown? Answer with one of: water, forest, desert, urban.',
    'forest water desert urban river field road building cloud shadow',
    'The image shows a scene from Sentinel-2 with bands B02 B03 B04 B08.',
]


@pytest.fixture(scope='session')
def tokenizer_dir(tmp_path_factory):
    """A byte-level BPE (300 ids incl. the chatml tokens) trained here and saved as a HF fast tokenizer."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=BPE_VOCAB, special_tokens=list(CHATML_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(_CORPUS * 20, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token='<|im_end|>', pad_token='<|endoftext|>',
                                        additional_special_tokens=['<|im_start|>'])
    out = tmp_path_factory.mktemp('tokenizer')
    tokenizer.save_pretrained(out)
    return str(out)


@pytest.fixture
def tokenizer(tokenizer_dir):
    """A fresh copy per test (the model adds special tokens in place)."""
    return PreTrainedTokenizerFast.from_pretrained(tokenizer_dir)


def tiny_model_cfg(tokenizer, processor=None, fusion=None, **overrides):
    """EarthMindModel kwargs for the contract's tiny model, built from config dicts as configs write them.

    Args:
        tokenizer: The tokenizer (given the processor's special tokens in place).
        processor (dict | None): Overrides of the tiny processor settings (``group_fusion``, ``band_group_vocab``,
            ``band_groups``, ``max_dates``, ``grounding``, ...).
        fusion (dict | None): Extra ``BandFusion`` arguments (``date_offset_encoding``, ``scorer_hidden_size``).
        **overrides: Other EarthMindModel arguments.
    """
    cfg = dict(
        processor=tiny_processor(tokenizer, **(processor or {})),
        vision_encoder=dict(type=InternViT, **TINY_VIT),
        llm=dict(type=build_causal_lm, llm_config=dict(TINY_QWEN2), attn_implementation='eager'),
        fusion=dict(type=BandFusion, **(fusion or {})))
    cfg.update(overrides)
    return cfg


@pytest.fixture(autouse=True, scope='session')
def _stack_patches():
    """The pinned stack's fixes, as tools/train.py applies them (peft LoRA needs an importable bitsandbytes)."""
    apply_stack_patches()

"""The published EarthDial_4B_RGB checkpoint as a model to evaluate directly (no training): model and processor.

The model is built from the EarthDial folder itself (``pretrained=dict(format='earthdial', ...)``): InternViT-300M,
``mlp1`` and Phi-3-mini are read by strict key mapping (its remote code is never run), its tokenizer is the
processor's, its ``config.json`` fixes the chat template (``phi3-chat``), 448 px tiles and pixel shuffle 0.5, and its
prompt tokens ([refer], [identify], [s2_ms_10], ...) give their rows to this toolkit's task and sensor tokens
(``projects/earthmind/models/checkpoints/earthdial.py``). Band triples are averaged per token
(``group_fusion='mean'``), as EarthDial's ``sequential_vit_features`` does; one date. Greedy decoding, one sample
per batch. The per-benchmark configs ``earthdial_4b_published_test_*.py`` take records, loader, metric and answer
length from the matching ``configs/earthmind/earthmind_internvl2_5_4b_sam2l_test_*.py`` and this model.

Run: ``tools/dist.sh test configs/earthdial/earthdial_4b_published_test_rgb_cls.py 8`` (no ``--checkpoint``: the
weights come from ``pretrained``; the folder at ``earthdial_path``, e.g. downloaded from the Hugging Face model
``akshaydudhane/EarthDial_4B_RGB``).
"""
from mmengine.config import read_base

with read_base():
    from .._base_.models.internvl_4b_common import *  # noqa: F401,F403

earthdial_path = 'pretrained/EarthDial_4B_RGB'

model['processor'].update(tokenizer=earthdial_path, template='phi3-chat', group_fusion='mean', max_dates=1)
model.update(
    pretrained=dict(format='earthdial', path=earthdial_path, attn_implementation='sdpa', torch_dtype=torch_dtype,
                    drop_path_rate=0.0),
    gradient_checkpointing=False,
)

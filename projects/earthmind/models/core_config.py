"""How an :class:`EarthMindCore` is described in an exported ``config.json`` and rebuilt from it.

:func:`core_config` writes the constructor arguments of every part (vision encoder, LLM config with its class,
fusion, grounding head) and the core's own numbers; :func:`core_from_config` builds the same core, with random
weights, wherever the exported folder is loaded. The weights then load key for key.
"""
from .earthmind_core import EarthMindCore, unwrap
from .encoders.intern_vit import InternViT
from .encoders.projector import build_mlp_projector
from .fusion.band_fusion import BandFusion
from .heads.sam2_grounding_head import SAM2GroundingHead
from .language_models import build_causal_lm

CORE_SETTINGS = ('tokens_per_tile', 'downsample_ratio', 'select_layer', 'image_token_id', 'seg_token_id',
                 'region_token_id')


def core_config(core, llm_auto_map=None):
    """The JSON-ready description of a core whose LoRA adapters are merged.

    Args:
        core (EarthMindCore): The core.
        llm_auto_map (dict | None): ``auto_map`` of an LLM family ``transformers`` does not ship (its modeling
            files travel with the export).
    """
    llm = unwrap(core.language_model)
    llm_config = llm.config.to_dict()
    llm_config['attn_implementation'] = llm.config._attn_implementation
    llm_config['vocab_size'] = llm.get_input_embeddings().num_embeddings
    if llm_auto_map:
        llm_config['auto_map'] = dict(llm_auto_map)
    head = core.grounding_head
    return dict(vision_config=core.vit.config_dict(), llm_config=llm_config, fusion_config=core.fusion.config_dict(),
                grounding_config=head.config_dict() if head is not None else None,
                **{name: getattr(core, name) for name in CORE_SETTINGS})


def core_from_config(config, code_folder=None):
    """Build a core (random weights) from :func:`core_config` output.

    Args:
        config (dict): The description.
        code_folder (str | None): Folder with the modeling files named in ``llm_config['auto_map']``.
    """
    vision_model = InternViT(**config['vision_config'])
    llm_config = config['llm_config']
    language_model = build_causal_lm(llm_config, llm_config.get('attn_implementation', 'sdpa'),
                                     code_folder=code_folder)
    hidden = language_model.config.hidden_size
    fusion = BandFusion(hidden_size=vision_model.hidden_size, **config['fusion_config'])
    projector = build_mlp_projector(vision_model.hidden_size, hidden, config['downsample_ratio'])
    head = None
    if config.get('grounding_config'):
        # The SAM2 weights come with the exported checkpoint; the sam2 package builds the modules from its config.
        head = SAM2GroundingHead(llm_hidden_size=hidden, checkpoint=None, **config['grounding_config'])
    return EarthMindCore(vision_model, projector, language_model, fusion, head,
                         **{name: config[name] for name in CORE_SETTINGS})

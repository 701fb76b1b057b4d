"""What a published checkpoint gives the model core, and the registry of checkpoint formats.

A model config names its starting point as ``pretrained=dict(format=NAME, path=FOLDER, **options)``. The format's
reader builds the ViT, projector and LLM the folder describes, loads their weights strictly, and says in this
toolkit's terms what else the folder carries: the processor settings it was trained with, which of its added tokens
are which of ours (matched by text), its grounding head and fusion weights, and what is not carried over.
:func:`~projects.earthmind.models.model_assembly.build_core` checks all of it against the processor and the config.
"""
import dataclasses
from typing import Callable, Dict, List, Optional

from torch import nn

CHECKPOINT_FORMATS: Dict[str, Callable] = {}


def register_checkpoint_format(name):
    """Decorator registering a reader ``reader(path, *, attn_implementation, torch_dtype, drop_path_rate,
    load_weights, **options) -> ImportedCheckpoint`` under ``name``."""

    def register(reader):
        if name in CHECKPOINT_FORMATS:
            raise ValueError(f'checkpoint format {name!r} is registered twice')
        CHECKPOINT_FORMATS[name] = reader
        return reader

    return register


@dataclasses.dataclass
class ImportedCheckpoint:
    """A published checkpoint, read into this toolkit's parts.

    Attributes:
        format (str): The format name (``internvl``, ``sa2va``, ``earthdial``, ``earthmind``).
        path (str): The folder read.
        vision_model (nn.Module): The ViT, weights loaded.
        projector (nn.Module): ``mlp1``, weights loaded.
        llm (nn.Module): The causal LM, weights loaded (its embedding rows are the checkpoint's vocabulary).
        downsample_ratio (float): Pixel-shuffle ratio the checkpoint was trained with.
        select_layer (int): ViT layer fed to the projector.
        processor_settings (dict): Processor fields the checkpoint fixes and their values (``template``,
            ``tile_size``, ``min_tiles``, ``max_tiles``, ``use_thumbnail``, ...); a processor that disagrees is an
            error naming the field.
        token_counterparts (dict): ``{toolkit token: checkpoint token}`` for tokens with another spelling in the
            checkpoint (e.g. an EarthDial task token for a ``<task:NAME>``): the toolkit token's embedding and output
            rows are copied from the checkpoint token's rows. Tokens spelled alike keep their own rows.
        unmatched_tokens (list[str]): Added tokens of the checkpoint the reader knows have no toolkit counterpart
            (kept in the vocabulary with their rows, reported; the build adds any other added token that neither
            the toolkit, the chat template nor the box markup uses).
        tokenizer_added_tokens (dict): ``{token: id}`` of the checkpoint's own tokenizer files, checked against the
            processor's tokenizer (same text, same id).
        grounding_state (dict | None): State dict for the grounding head (``SAM2GroundingHead`` key names), or None
            when the checkpoint has no mask decoder.
        fusion_state (dict | None): State-dict entries for ``BandFusion`` (key names of its ``state_dict``), or None.
        notes (list[str]): What is carried over and what is not, for the import report.
    """
    format: str
    path: str
    vision_model: nn.Module
    projector: nn.Module
    llm: nn.Module
    downsample_ratio: float
    select_layer: int
    processor_settings: dict = dataclasses.field(default_factory=dict)
    token_counterparts: Dict[str, str] = dataclasses.field(default_factory=dict)
    unmatched_tokens: List[str] = dataclasses.field(default_factory=list)
    tokenizer_added_tokens: Dict[str, int] = dataclasses.field(default_factory=dict)
    grounding_state: Optional[dict] = None
    fusion_state: Optional[dict] = None
    notes: List[str] = dataclasses.field(default_factory=list)


def read_checkpoint(format, path, **options):
    """Read ``path`` with the reader of ``format``.

    Raises:
        ValueError: For an unknown format (the known ones are listed).
    """
    # The readers register themselves when their modules are imported.
    from . import earthdial, earthmind_export, internvl, sa2va  # noqa: F401
    if format not in CHECKPOINT_FORMATS:
        raise ValueError(f'unknown checkpoint format {format!r}; known: {sorted(CHECKPOINT_FORMATS)}')
    return CHECKPOINT_FORMATS[format](path, **options)


def internvl_processor_settings(config, config_path):
    """Processor fields an InternVL-family ``config.json`` fixes: its chat template (by the name the file gives, a
    template of ``templates.py``), the tile and patch size, and the pixel-shuffle ratio.

    Raises:
        ValueError: For a template this toolkit does not have, naming the file.
    """
    from projects.earthmind.datasets.templates import TEMPLATES
    template = config.get('template')
    if template is not None and template not in TEMPLATES:
        raise ValueError(f'{config_path}: template {template!r} has no counterpart in this toolkit '
                         f'(known: {sorted(TEMPLATES)}); add it to projects/earthmind/datasets/templates.py')
    vision = config.get('vision_config') or {}
    settings = dict(tile_size=config.get('force_image_size') or vision.get('image_size'),
                    patch_size=vision.get('patch_size'), downsample_ratio=config.get('downsample_ratio'))
    if template is not None:
        settings['template'] = template
    return {name: value for name, value in settings.items() if value is not None}


def internvl_tiling_note(config):
    """A note on the tiling an InternVL-family checkpoint was trained with (a training choice, not checked)."""
    fields = ('min_dynamic_patch', 'max_dynamic_patch', 'use_thumbnail')
    if not any(name in config for name in fields):
        return None
    trained = ', '.join(f'{name}={config[name]}' for name in fields if name in config)
    return f'the checkpoint was trained with {trained} (processor min_tiles, max_tiles, use_thumbnail)'


def checkpoint_added_tokens(folder):
    """``{token: id}`` of the tokens added to the base vocabulary in ``folder``'s tokenizer files."""
    from transformers import AutoTokenizer
    return dict(AutoTokenizer.from_pretrained(folder).get_added_vocab())


def markers_are_text(vocab, template):
    """Whether the chat template's markers (end of turn, stop words) are plain text for a tokenizer's ``vocab``,
    as for xtuner's ``phi3_chat`` on a Qwen2.5 tokenizer: the processor then needs ``text_markers=True``."""
    from projects.earthmind.datasets.templates import get_template
    template = get_template(template)
    return any(marker not in vocab for marker in (template.assistant_suffix, *template.stop_words))

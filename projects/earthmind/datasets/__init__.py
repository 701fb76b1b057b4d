"""EarthMind datasets: raster reading, tiling, chat templates, tokenisation, batching."""
from . import transforms
from .collate import earthmind_collate_fn
from .conversation import IGNORE_INDEX, ConversationFormatError, SequenceTooLongError, encode_conversation
from .conversation_dataset import EarthMindConversationDataset
from .raster_io import RasterShape, raster_shape, read_raster
from .templates import TEMPLATES, ChatTemplate, check_template_tokens, get_template
from .tiling import choose_grid, dynamic_tile, num_tiles_for_shape
from .tokenizer_builder import build_tokenizer

__all__ = [
    'transforms', 'earthmind_collate_fn', 'IGNORE_INDEX', 'ConversationFormatError', 'SequenceTooLongError',
    'encode_conversation', 'EarthMindConversationDataset', 'RasterShape', 'raster_shape', 'read_raster', 'TEMPLATES',
    'ChatTemplate', 'check_template_tokens', 'get_template', 'choose_grid', 'dynamic_tile', 'num_tiles_for_shape',
    'build_tokenizer'
]

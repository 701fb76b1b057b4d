"""EarthMind datasets: raster reading, sensors, multi-sensor records, tiling, chat templates, tokenisation, batching."""
from . import transforms
from .collate import earthmind_collate_fn
from .conversation import IGNORE_INDEX, ConversationFormatError, SequenceTooLongError, encode_conversation
from .conversation_dataset import EarthMindConversationDataset
from .band_stack import BandSource, Grid, read_band_stack, reference_grid
from .band_stats import compute_band_stats
from .image_record import ImagePlan, Member, plan_record_images, read_record_images
from .processing_earthmind import EarthMindProcessor
from .raster_io import RasterReadError, RasterShape, raster_shape, read_raster
from .sensor_prompt import add_sensor_tokens
from .sensors import (DEFAULT_BAND_GROUP_VOCAB, SENSORS, Band, SensorSpec, get_sensor, sensor_special_tokens,
                      sentinel2_baseline_offset)
from .templates import TEMPLATES, ChatTemplate, check_template_tokens, get_template
from .tiling import choose_grid, dynamic_tile, num_tiles_for_shape

__all__ = [
    'transforms', 'earthmind_collate_fn', 'IGNORE_INDEX', 'ConversationFormatError', 'SequenceTooLongError',
    'encode_conversation', 'EarthMindConversationDataset', 'RasterShape', 'raster_shape', 'read_raster', 'TEMPLATES',
    'ChatTemplate', 'check_template_tokens', 'get_template', 'choose_grid', 'dynamic_tile', 'num_tiles_for_shape',
    'BandSource', 'Grid', 'read_band_stack', 'reference_grid', 'compute_band_stats', 'ImagePlan', 'Member',
    'plan_record_images', 'read_record_images', 'EarthMindProcessor', 'RasterReadError', 'add_sensor_tokens',
    'DEFAULT_BAND_GROUP_VOCAB', 'SENSORS', 'Band', 'SensorSpec', 'get_sensor', 'sensor_special_tokens',
    'sentinel2_baseline_offset'
]

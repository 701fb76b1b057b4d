"""Training the small byte-level BPE tokenizer of the sample dataset, offline.

The tokenizer is trained with the ``tokenizers`` library on the sample conversations
plus :data:`BUILTIN_CORPUS`, and saved as a Hugging Face ``PreTrainedTokenizerFast``
folder that ``AutoTokenizer.from_pretrained`` loads. It carries the special tokens of
the ``qwen2_chat`` template (``<|endoftext|>`` doubles as eos and pad) and the
EarthMind image tokens.
"""
import os

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from projects.earthmind.utils.special_tokens import EARTHMIND_SPECIAL_TOKENS

EOS_TOKEN = '<|endoftext|>'
CHAT_TOKENS = ('<|im_start|>', '<|im_end|>')
SPECIAL_TOKENS = (EOS_TOKEN, *CHAT_TOKENS, *EARTHMIND_SPECIAL_TOKENS)

# General Earth-observation and chat text, so that words beyond the sample answers
# (template roles, questions of later tasks) get merges too.
BUILTIN_CORPUS = (
    'system user assistant. You are a helpful assistant. You are an Earth-observation assistant.',
    'The image shows a river, a lake, a reservoir and the coast of the sea with a sandy beach.',
    'Dense forest covers the hills; a road crosses the trees and a power line runs along the valley.',
    'Sand dunes of the desert stretch to the horizon; there is no vegetation and no water.',
    'The urban area has buildings, streets, a bridge, a railway station, a stadium and a parking lot.',
    'Farmland, meadows, orchards, vineyards, wetlands and bare soil surround the small town.',
    'Describe the scene in detail. What objects are visible? How many ships are in the harbour?',
    'Is there an airport in the image? Where is the largest building? Which area is covered by clouds?',
    'Count the vehicles on the highway. Are the fields irrigated? What changed between the two dates?',
    'Sentinel-2 carries a multispectral instrument with thirteen bands from coastal aerosol to shortwave infrared.',
    'Landsat 8 and Landsat 9 observe the Earth with the Operational Land Imager and the Thermal Infrared Sensor.',
    'Synthetic aperture radar sees through clouds, day and night; VV and VH polarisations measure backscatter.',
    'The red, green and blue bands form a true colour composite; near infrared highlights healthy vegetation.',
    'Surface reflectance, top of atmosphere radiance, cloud mask, nodata value, ground sampling distance.',
    'Each pixel covers ten metres by ten metres; the scene is projected in the UTM coordinate reference system.',
    'Segment the flooded area. Outline every building. Give the bounding box of the ship near the pier.',
    'A mountain range with snow and glaciers rises above the lake; a dam holds back the reservoir.',
    'Crops, grassland, shrubland, mangroves, ice, snow, rock, salt flats and volcanoes are land-cover types.',
    'The answer is yes. The answer is no. There are three ships. The building is in the top left corner.',
    'Answer with one word. Answer with a number: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 20, 50, 100.',
    'north, south, east, west, left, right, top, bottom, centre, small, large, near, far, above, below',
    'Classify the scene: residential, industrial, commercial, harbour, airport, farmland, forest or river.',
    'Deforestation, urban growth, wildfire scars and floods are changes seen in satellite time series.',
)


def train_sample_tokenizer(texts, out_dir, vocab_size=1000):
    """Train a byte-level BPE tokenizer and save it as a Hugging Face folder.

    Training is deterministic for the same texts (single pass, fixed special tokens).

    Args:
        texts (Iterable[str]): Training texts; :data:`BUILTIN_CORPUS` is added.
        out_dir (str | os.PathLike): Folder to write (``tokenizer.json``,
            ``tokenizer_config.json``, ``special_tokens_map.json``).
        vocab_size (int): Target vocabulary size, special tokens included (the corpus
            may be too small to reach it).

    Returns:
        PreTrainedTokenizerFast: The saved tokenizer.
    """
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator([*texts, *BUILTIN_CORPUS], trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=EOS_TOKEN, pad_token=EOS_TOKEN,
                                        additional_special_tokens=[*CHAT_TOKENS, *EARTHMIND_SPECIAL_TOKENS])
    tokenizer.save_pretrained(os.fspath(out_dir))
    return tokenizer

"""Sensor tokens in the prompt."""
from projects.earthmind.utils.special_tokens import IMAGE_PLACEHOLDER

from .sensors import get_sensor


def add_sensor_tokens(conversations, sensors):
    """Return a copy of ``conversations`` with the sensors' tokens before the image.

    ``<image>`` becomes e.g. ``<sensor:sentinel2_l2a><sensor:sentinel1_grd><image>``
    (one token per distinct sensor, in member order). A record whose human turns have no
    placeholder gets ``<tokens><image>\\n`` in front of its first turn, which is where
    the image would be put anyway. Records without sensors are returned unchanged.

    Args:
        conversations (list[dict]): Turns of the record.
        sensors (Sequence[str]): Sensor names of the sample.

    Returns:
        list[dict]: New turns (the record itself is not modified).
    """
    names = list(dict.fromkeys(sensors))
    if not names or not conversations or not all(isinstance(turn, dict) for turn in conversations):
        return conversations  # malformed turns are reported by encode_conversation
    prefix = ''.join(get_sensor(name).special_token for name in names)
    turns = [dict(turn) for turn in conversations]
    for turn in turns[0::2]:
        if IMAGE_PLACEHOLDER in turn.get('value', ''):
            turn['value'] = turn['value'].replace(IMAGE_PLACEHOLDER, prefix + IMAGE_PLACEHOLDER, 1)
            return turns
    turns[0]['value'] = f'{prefix}{IMAGE_PLACEHOLDER}\n{turns[0]["value"]}'
    return turns

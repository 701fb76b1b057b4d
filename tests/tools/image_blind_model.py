"""The control of the image-token learning check: EarthMind with its visual tokens zeroed before the LLM.

Used as ``--cfg-options model.type=tests.tools.image_blind_model.ImageBlindModel``: same parameters, same graph and
checkpoints as :class:`EarthMindModel`, but the projector's output is multiplied by 0, so no image information
reaches the LLM.
"""
from projects.earthmind.models.earthmind_model import EarthMindModel


class ImageBlindModel(EarthMindModel):
    """:class:`EarthMindModel` whose projected visual tokens are zeros."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.core.mlp1.register_forward_hook(lambda module, args, output: output * 0)

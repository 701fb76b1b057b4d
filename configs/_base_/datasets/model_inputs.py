"""The last pipeline steps of every modality: tiles, tokens and the sample dict, all with the processor's settings."""
from projects.earthmind.datasets.transforms import DynamicTiling, EncodeConversation, PackInputs

model_input_steps = [dict(type=DynamicTiling), dict(type=EncodeConversation), dict(type=PackInputs)]

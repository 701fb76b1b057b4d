"""EarthMind: config-driven training of Earth-observation multimodal LLMs."""
import os

# Weights and tokenizers are read from local folders only. Without this, a mistyped local path makes transformers
# try the Hugging Face Hub (retrying for about a minute) before it reports the missing folder. Set HF_HUB_OFFLINE=0
# to allow downloads.
os.environ.setdefault('HF_HUB_OFFLINE', '1')

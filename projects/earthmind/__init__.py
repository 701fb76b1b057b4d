"""EarthMind: config-driven training of Earth-observation multimodal LLMs."""

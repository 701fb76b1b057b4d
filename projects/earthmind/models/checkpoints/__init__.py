"""EarthMind checkpoints."""

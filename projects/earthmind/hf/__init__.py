"""EarthMind hf."""

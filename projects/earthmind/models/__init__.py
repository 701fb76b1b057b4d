"""EarthMind models."""

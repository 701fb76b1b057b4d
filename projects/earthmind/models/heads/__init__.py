"""EarthMind heads."""

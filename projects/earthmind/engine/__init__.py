"""EarthMind engine."""

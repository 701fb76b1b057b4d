"""EarthMind evaluation."""

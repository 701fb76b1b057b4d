"""EarthMind encoders."""

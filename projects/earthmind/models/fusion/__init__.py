"""EarthMind fusion."""

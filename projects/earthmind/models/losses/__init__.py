"""EarthMind losses."""

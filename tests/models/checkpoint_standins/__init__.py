"""Tiny stand-ins of published checkpoint folders (Sa2VA/EarthMind, ...), written in their exact layouts."""

"""OpenMMLab-style ``projects`` namespace holding the EarthMind package."""

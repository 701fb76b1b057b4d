"""Shared helpers: special tokens, devices and stack compatibility."""

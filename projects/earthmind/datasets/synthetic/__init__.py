"""Generators of the synthetic sample dataset (``tools/data/make_sample_dataset.py``) and its tokenizer."""

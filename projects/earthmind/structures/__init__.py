"""Data structures shared by datasets, models and evaluation: boxes, masks, packed rows, batches."""

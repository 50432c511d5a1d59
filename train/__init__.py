"""Data sets, synthetic data, UNet++ training, metrics and evaluation."""

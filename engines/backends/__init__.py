"""Inference backends, one module each; the registry (polyp_rt.engines.registry) opens them."""

"""Live capture -> infer -> overlay loop and the command line."""

"""The live loop: sources, the inference stage, overlay, sinks, recorder, statistics, and their wiring."""

"""Video-level evaluation, as CADe systems are judged: lesions found and how fast, false alarms per
minute, per-frame figures and flicker, from per-frame predictions and per-frame truth masks.

Definitions and their sources: docs/VIDEO_METRICS.md. The room sits above train/ (it reads masks
with train/data.py and scores Dice with train/metrics.py, both torch-free) and below batch/ and cli/.
"""

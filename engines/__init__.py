"""Inference backends behind one interface: `open_engine(path, backend="auto")`."""

from polyp_rt.engines.base import Engine
from polyp_rt.engines.contract import ModelContract
from polyp_rt.engines.errors import PolypRtError
from polyp_rt.engines.factory import BACKENDS, open_engine

__all__ = ["BACKENDS", "Engine", "ModelContract", "PolypRtError", "open_engine"]

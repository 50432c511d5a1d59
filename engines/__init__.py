"""The model and its runtimes: the contract, the engine interface, the backends and their registry."""

from polyp_rt.engines.base import Engine
from polyp_rt.engines.contract import ModelContract
from polyp_rt.engines.registry import open_engine, read_contract

__all__ = ["Engine", "ModelContract", "open_engine", "read_contract"]

"""Parallel bottleneck adapters (constant or learned scale) for llm-adapters: the adapter type ``parallel``."""

from __future__ import annotations

from .adapter import ParallelAdapter
from .config import PRESETS, ParallelConfig
from .layer import ParallelLayer

__version__ = "0.1.0"

__all__ = ["PRESETS", "ParallelAdapter", "ParallelConfig", "ParallelLayer", "__version__"]

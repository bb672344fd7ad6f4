"""Series bottleneck adapters (AdapterH, AdapterP) for llm-adapters: the adapter type ``series``."""

from __future__ import annotations

from .adapter import SeriesAdapter
from .config import SeriesConfig
from .layer import SeriesLayer

__version__ = "0.1.0"

__all__ = ["SeriesAdapter", "SeriesConfig", "SeriesLayer", "__version__"]

"""Where the published LLM-Adapters data sets are read from: ``../shared/data/llm-adapters`` beside the
repository (never copied into it), or ``$LLM_ADAPTERS_SHARED_DATA``. Tests that need them skip, saying where
they looked, when they are absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("LLM_ADAPTERS_SHARED_DATA", REPO.parent / "shared" / "data" / "llm-adapters"))


def shared_or_skip() -> Path:
    """The data directory, or a skip naming where it was looked for."""
    if not (SHARED_DATA / "dataset").is_dir():
        pytest.skip(f"the shared data sets are not at {SHARED_DATA} (set LLM_ADAPTERS_SHARED_DATA)")
    return SHARED_DATA

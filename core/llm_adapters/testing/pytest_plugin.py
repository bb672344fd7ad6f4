"""pytest plugin (entry point ``pytest11``) exposing the core's test helpers as fixtures.

It imports nothing heavy: torch and transformers load only when a test uses a fixture.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture
def tiny_model_factory() -> Callable[..., Any]:
    """``tiny_model_factory(family_name, seed=0)`` builds a tiny random model of an installed family."""
    from .models import tiny_model

    return tiny_model

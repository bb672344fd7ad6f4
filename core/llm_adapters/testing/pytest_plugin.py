"""pytest plugin (entry point ``pytest11``) exposing the core's test helpers as fixtures."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from torch import nn

from .models import tiny_model


@pytest.fixture
def tiny_model_factory() -> Callable[..., nn.Module]:
    """``tiny_model_factory(family_name, seed=0)`` builds a tiny random model of an installed family."""
    return tiny_model

"""The core's adapter conformance suite on a fusion of two series AdapterP adapters, on LLaMA.

The kit builds adapters from ``config`` alone; a fusion's config names adapter directories, so a class-scoped
fixture saves two series adapters (for the tiny LLaMA, the only family they fit) and fills ``config`` in before
the checks run. One check cannot apply and is skipped with its reason: "the defaults alone form a valid config"
(a fusion has no default for ``adapters``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from llm_adapters.registry import get_adapter_type
from llm_adapters.testing.conformance import AdapterConformance


class TestFusionConformance(AdapterConformance):
    config: ClassVar[dict[str, Any]] = {"type": "fusion"}

    @classmethod
    def family_names(cls) -> list[str]:
        return ["llama"]  # the fused adapters were saved for the tiny LLaMA

    @pytest.fixture(autouse=True)
    def _fusion_config(self, adapter_dirs: dict[str, Path]) -> Iterator[None]:
        type(self).config = {"type": "fusion", "adapters": [str(adapter_dirs["p1"]), str(adapter_dirs["p2"])]}
        yield

    def test_config_fields_are_described_and_defaults_valid(self) -> None:
        cls = get_adapter_type("fusion").config_class
        for name, info in cls.model_fields.items():
            assert info.description, f"{cls.__name__}.{name} has no description"
        pytest.skip("a fusion has no default for 'adapters' (2+ trained adapter directories): no defaults-only config")

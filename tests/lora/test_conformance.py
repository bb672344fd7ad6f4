"""The core's adapter conformance suite, run on LoRA, rsLoRA and DoRA.

The first classes run on the inline test families (LLaMA-style, GPT-2 with its fused ``c_attn``, GPT-NeoX
with a per-head fused projection) so that they do not depend on what else is installed; the last runs on
every installed model family together with every installed adapter type.
"""

from __future__ import annotations

import pytest

from llm_adapters.testing.conformance import AdapterConformance

from .families import FAMILIES


class TestLoRA(AdapterConformance):
    config = {"type": "lora", "r": 4, "dropout": 0.0}

    @classmethod
    def family_names(cls) -> list[str]:
        return [f.name for f in FAMILIES]


class TestRsLoRAPaperBest(TestLoRA):
    config = {"type": "lora", "r": 4, "dropout": 0.0, "use_rslora": True, "preset": "paper-best"}


class TestDoRA(TestLoRA):
    config = {"type": "lora", "r": 4, "dropout": 0.0, "use_dora": True, "preset": "paper-best"}


@pytest.mark.installed_plugins
class TestLoRAOnInstalledFamilies(AdapterConformance):
    config = {"type": "lora", "r": 4, "dropout": 0.0, "preset": "paper-best"}

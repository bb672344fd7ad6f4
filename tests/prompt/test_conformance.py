"""The core's adapter conformance suite, for the three prompt-based types and their encoder variants, on every
model family of the families plugin. Merging is skipped by the types' declaration (``mergeable = False``)."""

from __future__ import annotations

from llm_adapters.testing.conformance import AdapterConformance

from .helpers import FAMILIES


class _OnEveryFamily(AdapterConformance):
    @classmethod
    def family_names(cls) -> list[str]:
        return FAMILIES


class TestPrefixConformance(_OnEveryFamily):
    config = {"type": "prefix", "num_virtual_tokens": 4}


class TestPrefixProjectionConformance(_OnEveryFamily):
    config = {"type": "prefix", "num_virtual_tokens": 3, "prefix_projection": True, "encoder_hidden_size": 16}


class TestPromptConformance(_OnEveryFamily):
    config = {"type": "prompt", "num_virtual_tokens": 4}


class TestPTuningMLPConformance(_OnEveryFamily):
    config = {"type": "ptuning", "num_virtual_tokens": 4, "encoder_hidden_size": 16}


class TestPTuningLSTMConformance(_OnEveryFamily):
    config = {"type": "ptuning", "num_virtual_tokens": 3, "encoder": "lstm", "encoder_hidden_size": 8}

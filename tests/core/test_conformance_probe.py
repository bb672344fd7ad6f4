"""The conformance suite itself, run on the test-only probe adapter and probe families."""

from __future__ import annotations

from llm_adapters.testing.conformance import AdapterConformance


class TestProbeParallel(AdapterConformance):
    config = {"type": "probe", "kind": "parallel"}

    @classmethod
    def family_names(cls) -> list[str]:
        return ["test-llama", "test-gpt2"]


class TestProbePost(TestProbeParallel):
    config = {"type": "probe", "kind": "post", "target_modules": ["mlp.down"]}
    mergeable = False

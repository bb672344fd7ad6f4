"""The core's conformance suite on the parallel adapter, on every installed model family."""

from __future__ import annotations

from llm_adapters.testing.conformance import AdapterConformance


class TestParallelReference(AdapterConformance):
    """The reference preset: beside the attention q, k and v projections (parts of a fused one)."""

    config = {"type": "parallel", "bottleneck_size": 8, "dropout": 0.0, "scaling": "learned"}


class TestParallelPaperBest(AdapterConformance):
    """The paper's best placement, alongside the MLP, with an integer scale and an identity start."""

    config = {
        "type": "parallel",
        "bottleneck_size": 8,
        "dropout": 0.0,
        "preset": "paper-best",
        "scaling": 2,
        "init": "identity",
    }

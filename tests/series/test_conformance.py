"""The core's conformance suite on the series adapter, on every installed model family.

The suite perturbs the adapter's parameters before comparing outputs, so an identity-initialised adapter
is exercised as well as a BERT-initialised one.
"""

from __future__ import annotations

from llm_adapters.testing.conformance import AdapterConformance


class TestSeriesAdapterH(AdapterConformance):
    """The default placement (pre on the MLP input projections, post on the output projection)."""

    config = {"type": "series", "bottleneck_size": 8, "dropout": 0.0}


class TestSeriesAfterAttention(AdapterConformance):
    """After the attention output, identity start and a learned scale: a placement the reference lacks."""

    config = {
        "type": "series",
        "bottleneck_size": 8,
        "dropout": 0.0,
        "placement": ["attn.o:post"],
        "init": "identity",
        "scaling": "learned",
    }

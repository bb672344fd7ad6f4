"""The core's adapter conformance suite, run on (IA)^3 on every first-party model family.

``init: normal`` starts the vectors away from ones (the suite perturbs them as well), so every check sees
the adapter's effect; the merge checks run because the layers declare ``mergeable = True``.
"""

from __future__ import annotations

from llm_adapters.registry import model_families
from llm_adapters.testing import use_plugins
from llm_adapters.testing.conformance import AdapterConformance

from .conftest import FAMILY_PLUGINS


def _family_names() -> list[str]:
    # read at collection, before the autouse fixture swaps the plugin set in: the families of the same set
    with use_plugins(*FAMILY_PLUGINS):
        return sorted(n for n, f in model_families().items() if f.tiny_config)


FAMILIES = _family_names()


class TestIA3(AdapterConformance):
    config = {"type": "ia3", "init": "normal", "init_std": 0.1}

    @classmethod
    def family_names(cls) -> list[str]:
        return FAMILIES


class TestIA3ValuesAndFeedForward(TestIA3):
    """A narrower placement: one post site and the pre site, given as roles."""

    config = {"type": "ia3", "init": "normal", "init_std": 0.1, "target_modules": ["attn.v", "mlp.down"]}


def test_every_first_party_family_is_covered() -> None:
    assert FAMILIES == sorted(["bloom", "falcon", "gpt2", "gpt_neo", "gpt_neox", "gptj", "llama", "opt", "phi"])

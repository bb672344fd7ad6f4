"""What the conformance kits' self-tests (``test_conformance_kits.py``) run the kits on: good and deliberately
broken model families, tasks and adapter types, each broken one breaking one property.

The self-tests copy this module and ``probe_plugin.py`` into a scratch folder and run pytest there in a
subprocess, so that the kits' own failures can be counted.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Literal

import torch
from probe_plugin import LLAMA, Probe, ProbeConfig, ProbeLayer

from llm_adapters import AdapterType, ModelFamily, Site, hookimpl
from llm_adapters.family import FusedProjection
from llm_adapters.plugins import PluginManager, set_plugin_manager
from llm_adapters.task import Example, Option, Prediction, Task

# ---- model families -----------------------------------------------------------------------------------
BLOOM = ModelFamily(
    name="kit-bloom",
    model_types=("bloom",),
    blocks="transformer.h",
    roles={"attn.qkv": "self_attention.query_key_value", "attn.o": "self_attention.dense"},
    fused={"attn.qkv": FusedProjection("per_head")},
    tiny_config={"model_type": "bloom", "vocab_size": 128, "hidden_size": 32, "n_layer": 2, "n_head": 4},
)
#: a role on a path that does not exist
WRONG_PATH = replace(LLAMA, name="kit-wrong-path", roles={**LLAMA.roles, "mlp.down": "mlp.down_projection"})
#: the key role on the value projection (a module of the same shape under grouped-query attention)
KEY_ON_VALUE = replace(LLAMA, name="kit-key-on-value", roles={**LLAMA.roles, "attn.k": "self_attn.v_proj"})
#: BLOOM's fused projection declared in GPT-2's contiguous layout instead of per head
CONTIGUOUS_BLOOM = replace(BLOOM, name="kit-contiguous-bloom", fused={"attn.qkv": FusedProjection("contiguous")})
#: dims read the key/value heads from the attention heads: they disagree with the KV cache
WRONG_KV_HEADS = replace(LLAMA, name="kit-wrong-kv", config_keys={"num_key_value_heads": "num_attention_heads"})


# ---- tasks --------------------------------------------------------------------------------------------
class SumTask(Task):
    """Sums of two numbers; reads the number after "answer is", else the last number."""

    name = "kit-sum"
    aliases = ("kit-addition",)

    def load(self, data_dir: Any = None, limit: int | None = None) -> list[Example]:
        pairs = [(2, 3), (10, 7), (1, 1), (40, 2)]
        examples = [Example(f"What is {a} + {b}?", str(a + b), index=i) for i, (a, b) in enumerate(pairs)]
        return examples if limit is None else examples[:limit]

    def extract_reference(self, generation: str) -> Prediction:
        found = re.findall(r"-?\d+(?:\.\d+)?", generation)
        return float(found[-1]) if found else None

    def extract_robust(self, generation: str, example: Example | None = None) -> Prediction:
        stated = re.search(r"answer is\s*(-?\d+(?:\.\d+)?)", generation, re.IGNORECASE)
        return float(stated[1]) if stated else self.extract_reference(generation)

    def is_correct(self, prediction: Prediction, answer: str, scoring_mode: str = "robust") -> bool:
        return isinstance(prediction, float) and abs(prediction - float(answer)) < 1e-9


class ColorTask(Task):
    """Which colour: red, green or blue; reads the first colour named."""

    name = "kit-color"
    choices = ("red", "green", "blue")

    def load(self, data_dir: Any = None, limit: int | None = None) -> list[Example]:
        facts = [("grass", "green"), ("the sky", "blue"), ("a ripe tomato", "red")]
        examples = [Example(f"What colour is {thing}?", color, index=i) for i, (thing, color) in enumerate(facts)]
        return examples if limit is None else examples[:limit]

    def extract_reference(self, generation: str) -> Prediction:
        found = re.search("|".join(self.choices), generation)
        return found[0] if found else None

    def extract_robust(self, generation: str, example: Example | None = None) -> Prediction:
        found = re.search("|".join(self.choices), generation.lower())
        return found[0] if found else None

    def is_correct(self, prediction: Prediction, answer: str, scoring_mode: str = "robust") -> bool:
        return prediction == answer


class BlindSumTask(SumTask):
    """Broken: its extraction never finds an answer."""

    name = "kit-blind-sum"
    aliases = ()

    def extract_reference(self, generation: str) -> Prediction:
        return None

    def extract_robust(self, generation: str, example: Example | None = None) -> Prediction:
        return None


class MissingGoldColorTask(ColorTask):
    """Broken: the options of an example leave out its gold label."""

    name = "kit-missing-gold"

    def options(self, example: Example) -> list[Option]:
        return [Option(c, c) for c in self.choices if c != example.answer]


# ---- adapter types ------------------------------------------------------------------------------------
class LeakyConfig(ProbeConfig):
    type: Literal["leaky"] = "leaky"  # type: ignore[assignment]


class Leaky(Probe):
    """Broken: creating a layer scales the base weight in place, so detaching leaves the change behind."""

    name = "leaky"
    config_class = LeakyConfig

    def create_layer(self, config: LeakyConfig, site: Site) -> ProbeLayer:  # type: ignore[override]
        with torch.no_grad():
            site.weight().mul_(1.5)
        return super().create_layer(config, site)


# ---- plugins ------------------------------------------------------------------------------------------
class KitPlugin:
    """A plugin registering the given adapter types, model families and tasks."""

    def __init__(
        self,
        *,
        adapters: tuple[type[AdapterType], ...] = (),
        families: tuple[ModelFamily, ...] = (),
        tasks: tuple[Task, ...] = (),
    ) -> None:
        self.adapters, self.families, self.tasks = adapters, families, tasks

    @hookimpl
    def register_adapters(self, register: Callable[[type[AdapterType]], None]) -> None:
        for adapter_type in self.adapters:
            register(adapter_type)

    @hookimpl
    def register_model_families(self, register: Callable[[ModelFamily], None]) -> None:
        for family in self.families:
            register(family)

    @hookimpl
    def register_tasks(self, register: Callable[[Task], None]) -> None:
        for task in self.tasks:
            register(task)


def install(*plugins: Any) -> None:
    """Make ``plugins`` the process's plugin set for good: for what runs at collection, before any fixture."""
    pm = PluginManager()
    for i, plugin in enumerate(plugins):
        pm.add_plugin(plugin, f"kit-plugin-{i}", version="0.0.0", entry_point=None)
    set_plugin_manager(pm)

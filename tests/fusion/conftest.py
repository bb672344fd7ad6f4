"""The fusion tests run with an inline plugin set: the fusion plugin, the adapter types it fuses (series,
parallel), the LLaMA family, and the templates and training plugins (for train() and the fuse command)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import llm_adapters as la
import llm_adapters_templates
import llm_adapters_train
from llm_adapters.engine import adapter_parameters
from llm_adapters.plugins import PluginManager
from llm_adapters.testing import tiny_model_from_config, use_plugins
from llm_adapters_families import llama
from llm_adapters_fusion import plugin
from llm_adapters_parallel import plugin as parallel_plugin
from llm_adapters_series import plugin as series_plugin

PLUGINS = (plugin, series_plugin, parallel_plugin, llama, llm_adapters_templates, llm_adapters_train)


def tiny_llama() -> torch.nn.Module:
    from llm_adapters.registry import model_families

    return tiny_model_from_config(model_families()["llama"].tiny_config)


def save_trained_like(config: dict, path: Path, seed: int) -> Path:
    """An adapter of ``config`` on the tiny LLaMA with random (clearly non-zero) weights, saved to ``path``."""
    model = tiny_llama()
    torch.manual_seed(seed)
    la.attach(model, config, name="a")
    with torch.no_grad():
        for p in adapter_parameters(model, "a").values():
            p.normal_(0.0, 0.3)
    la.save_adapter(model, path, name="a")
    return path


@pytest.fixture(autouse=True)
def fusion_plugins() -> Iterator[PluginManager]:
    with use_plugins(*PLUGINS) as pm:
        yield pm


@pytest.fixture(scope="session")
def adapter_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two series AdapterP adapters, one series AdapterH and two parallel adapters, saved with random weights."""
    root = tmp_path_factory.mktemp("adapters")
    series_p = {"type": "series", "variant": "adapterp", "bottleneck_size": 8}
    with use_plugins(*PLUGINS):
        return {
            "p1": save_trained_like(series_p, root / "p1", 1),
            "p2": save_trained_like(series_p, root / "p2", 2),
            "h": save_trained_like({"type": "series", "bottleneck_size": 8}, root / "h", 3),
            "par1": save_trained_like({"type": "parallel", "bottleneck_size": 8}, root / "par1", 4),
            "par2": save_trained_like({"type": "parallel", "bottleneck_size": 8}, root / "par2", 5),
        }

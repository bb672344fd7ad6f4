"""A third-party adapter plugin that this repository does not ship: built, installed into a scratch
environment, discovered, attached, trained and saved through the public API, with no change to the core."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PYPROJECT = """
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "llm-adapters-channelscale"
version = "0.3.0"
dependencies = ["llm-adapters-core"]

[project.entry-points.llm_adapters]
channel_scale = "llm_adapters_channelscale"

[tool.hatch.build.targets.wheel]
packages = ["src/llm_adapters_channelscale"]
"""

PLUGIN = '''
"""A learned per-channel scaling of a module's output: y' = y * s, s initialised to ones."""
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from llm_adapters import AdapterConfig, AdapterLayer, AdapterType, Site, hookimpl


class ChannelScaleConfig(AdapterConfig):
    type: Literal["channel-scale"] = "channel-scale"
    init: float = Field(1.0, gt=0, description="Initial value of every scale.")


class ChannelScaleLayer(AdapterLayer):
    def __init__(self, channels: int, init: float) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.full((channels,), init))

    def forward(self, y: torch.Tensor) -> torch.Tensor:  # y: (..., channels)
        return y * self.scale


class ChannelScale(AdapterType):
    name = "channel-scale"
    config_class = ChannelScaleConfig
    default_kind = "post"
    default_targets = ("down_proj",)

    def create_layer(self, config: ChannelScaleConfig, site: Site) -> ChannelScaleLayer:
        return ChannelScaleLayer(site.features()[1], config.init)


@hookimpl
def register_adapters(register):
    register(ChannelScale)
'''

SCRIPT = """
import json, sys, torch
import llm_adapters as la
from llm_adapters.testing import tiny_model_from_config

cfg = {"model_type": "llama", "vocab_size": 64, "hidden_size": 16, "intermediate_size": 32,
       "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1}
model = tiny_model_from_config(cfg)
la.attach(model, {"type": "channel-scale"})
ids = torch.arange(2, 18).reshape(2, 8)
opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
losses = []
model.train()
for _ in range(5):
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward(); opt.step(); opt.zero_grad(); losses.append(loss.item())
model.eval()
la.save_adapter(model, sys.argv[1])
fresh = tiny_model_from_config(cfg)
la.load_adapter(fresh, sys.argv[1])
same = torch.equal(fresh(ids).logits, model(ids).logits)
print(json.dumps({"losses": losses, "trainable": la.trainable_parameters(model)[0], "same": same}))
"""


def install_scratch(src: Path, site: Path) -> dict[str, str]:
    """Install the distribution at ``src`` into the scratch directory ``site`` (no index, no dependencies) and
    return an environment in which it is importable, with no LLM_ADAPTERS_* switch set."""
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(site), str(src)],
        check=True,
        capture_output=True,
        timeout=300,
    )  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLM_ADAPTERS_")}
    env["PYTHONPATH"] = str(site)
    return env


@pytest.mark.slow
def test_third_party_plugin_in_a_scratch_environment(tmp_path: Path) -> None:
    src = tmp_path / "src" / "llm-adapters-channelscale"
    (src / "src" / "llm_adapters_channelscale").mkdir(parents=True)
    (src / "pyproject.toml").write_text(PYPROJECT)
    (src / "src" / "llm_adapters_channelscale" / "__init__.py").write_text(textwrap.dedent(PLUGIN))
    env = install_scratch(src, tmp_path / "site")
    cli = shutil.which("llm-adapters", path=str(Path(sys.executable).parent))
    assert cli is not None
    rows = json.loads(
        subprocess.run(
            [cli, "plugins", "--json"], env=env, capture_output=True, text=True, check=True, timeout=300
        ).stdout
    )
    mine = [r for r in rows if r["name"] == "llm-adapters-channelscale"]
    assert mine == [
        {
            "name": "llm-adapters-channelscale",
            "version": "0.3.0",
            "entry_point": "channel_scale = llm_adapters_channelscale",
            "hooks": ["register_adapters"],
            "adapters": ["channel-scale"],
            "model_families": [],
            "tasks": [],
            "templates": [],
            "model_sources": [],
            "commands": [],
            "error": None,
            "model_types": {},
            "descriptions": {"channel-scale": ""},
            "models": {},
        }
    ]
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "saved")], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["trainable"] == 2 * 16  # one scale per output channel of each down_proj
    assert result["losses"][-1] < result["losses"][0]
    assert result["same"] is True
    meta = json.loads((tmp_path / "saved" / "llm_adapters_config.json").read_text())
    assert meta["plugin"] == {"name": "llm-adapters-channelscale", "version": "0.3.0"}


@pytest.mark.slow
def test_a_broken_plugin_is_listed_and_the_cli_still_works(tmp_path: Path) -> None:
    src = tmp_path / "broken"
    (src / "src" / "llm_adapters_broken").mkdir(parents=True)
    (src / "pyproject.toml").write_text(
        PYPROJECT.replace("channelscale", "broken").replace(
            "channel_scale = llm_adapters_broken", "broken = llm_adapters_broken"
        )
    )
    (src / "src" / "llm_adapters_broken" / "__init__.py").write_text("import a_module_that_does_not_exist\n")
    env = install_scratch(src, tmp_path / "site")
    cli = shutil.which("llm-adapters", path=str(Path(sys.executable).parent))
    res = subprocess.run([cli, "plugins", "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0
    row = next(r for r in json.loads(res.stdout) if r["name"] == "llm-adapters-broken")
    assert row["error"] == "failed to import: ModuleNotFoundError: No module named 'a_module_that_does_not_exist'"
    assert "skipping plugin 'llm-adapters-broken'" in res.stderr
    strict = subprocess.run(
        [cli, "plugins"], env={**env, "LLM_ADAPTERS_STRICT_PLUGINS": "1"}, capture_output=True, text=True, timeout=300
    )
    assert strict.returncode != 0 and "plugin 'llm-adapters-broken': failed to import" in strict.stderr

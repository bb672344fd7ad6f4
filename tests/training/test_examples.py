"""The shipped recipes (examples/*.yaml) are valid run configs, their adapter options are valid for the
installed adapter plugins, and their targets resolve on a tiny model of the recipe's family."""

from __future__ import annotations

from pathlib import Path

import pytest

import llm_adapters as la
from llm_adapters.config import parse_config
from llm_adapters.testing import tiny_model, use_plugins
from llm_adapters_train.run_config import build_config

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))
FAMILY_OF = {"yahma/llama": "llama", "bigscience/bloomz": "bloom", "EleutherAI/gpt-j": "gptj"}


def test_every_reference_recipe_ships() -> None:
    names = {p.stem for p in EXAMPLES}
    assert {"llama7b-lora", "llama7b-prefix", "llama7b-series", "llama7b-parallel", "llama13b-lora"} <= names
    assert {"bloomz7b-lora", "bloomz7b-series", "bloomz7b-parallel"} <= names
    assert {"gptj6b-lora", "gptj6b-series", "gptj6b-parallel"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_recipe_is_valid(path: Path) -> None:
    cfg = build_config(path)
    assert cfg.batch_size % cfg.micro_batch_size == 0
    with use_plugins(entry_points=True):
        if cfg.adapter not in la.adapter_types():
            pytest.skip(f"adapter type {cfg.adapter!r} is not installed")
        parse_config({"type": cfg.adapter, **cfg.adapter_options})
        family = next((f for prefix, f in FAMILY_OF.items() if cfg.model.startswith(prefix)), None)
        if family is None or family not in la.model_families():
            pytest.skip(f"no installed family for {cfg.model}")
        model = tiny_model(family)
        la.attach(model, {"type": cfg.adapter, **cfg.adapter_options})
        assert la.list_adapters(model)[0].parameters > 0


def test_recipe_values_match_the_reference() -> None:
    lora = build_config(EXAMPLES[0].parent / "llama7b-lora.yaml")
    assert (lora.batch_size, lora.micro_batch_size, lora.num_epochs, lora.learning_rate) == (16, 4, 3, 3e-4)
    assert lora.adapter_options["r"] == 32 and lora.adapter_options["alpha"] == 64
    assert (lora.cutoff_len, lora.eval_steps, lora.save_steps, lora.val_set_size) == (256, 80, 80, 0)
    prefix = build_config(EXAMPLES[0].parent / "llama7b-prefix.yaml")
    assert prefix.adapter_options == {"num_virtual_tokens": 10}
    assert (prefix.batch_size, prefix.num_epochs, prefix.learning_rate, prefix.val_set_size) == (8, 5, 3e-2, 120)
    assert (prefix.eval_steps, prefix.save_steps) == (10, 10)
    assert build_config(EXAMPLES[0].parent / "llama13b-lora.yaml").gradient_checkpointing is True


@pytest.mark.parametrize("path", sorted((EXAMPLES[0].parent / "accelerate").glob("*.yaml")), ids=lambda p: p.stem)
def test_accelerate_configs_load(path: Path) -> None:
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(path))
    expected = {"multi_gpu": "MULTI_GPU", "multi_node": "MULTI_GPU", "fsdp": "FSDP", "deepspeed_zero2": "DEEPSPEED"}
    assert config.distributed_type.value == expected[path.stem]
    if path.stem == "fsdp":
        assert config.fsdp_config["fsdp_state_dict_type"] == "FULL_STATE_DICT"

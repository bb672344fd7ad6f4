"""Shared helpers of the family tests: the expected geometry, read from a transformers config by hand."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers.pytorch_utils import Conv1D

from llm_adapters import Placement
from llm_adapters.engine.targets import resolve_targets
from llm_adapters.family import ROLES, ModelFamily

#: every family this plugin registers, and the model types each covers
EXPECTED_FAMILIES: dict[str, tuple[str, ...]] = {
    "bloom": ("bloom",),
    "falcon": ("falcon",),
    "gpt2": ("gpt2",),
    "gpt_neo": ("gpt_neo",),
    "gpt_neox": ("gpt_neox",),
    "gptj": ("gptj",),
    "llama": ("llama", "mistral", "qwen2", "qwen3", "gemma", "granite", "helium", "olmo", "smollm3", "stablelm"),
    "opt": ("opt",),
    "phi": ("phi",),
}


def linear_shape(module: nn.Module) -> tuple[int, int]:
    """``(out, in)`` of an ``nn.Linear`` or of GPT-2's ``Conv1D`` (which stores ``(in, out)``)."""
    w = module.weight
    if isinstance(module, Conv1D):
        return int(w.shape[1]), int(w.shape[0])
    assert isinstance(module, nn.Linear), type(module)
    return int(w.shape[0]), int(w.shape[1])


def geometry(config: Any) -> dict[str, int]:
    """Hidden size, heads, key/value heads in the q/k/v projections, head size and MLP width, per
    ``model_type``, spelled out from each architecture's configuration class."""
    mt = config.model_type
    if mt in ("gpt2", "gptj"):
        hidden, heads, layers = config.n_embd, config.n_head, config.n_layer
        inner = config.n_inner or 4 * hidden
    elif mt == "bloom":
        hidden, heads, layers, inner = config.hidden_size, config.n_head, config.n_layer, 4 * config.hidden_size
    elif mt == "gpt_neo":
        hidden, heads, layers = config.hidden_size, config.num_heads, config.num_layers
        inner = config.intermediate_size or 4 * hidden
    elif mt == "opt":
        hidden, heads, layers, inner = (
            config.hidden_size,
            config.num_attention_heads,
            config.num_hidden_layers,
            config.ffn_dim,
        )
    elif mt == "falcon":
        hidden, heads, layers = config.hidden_size, config.num_attention_heads, config.num_hidden_layers
        inner = config.ffn_hidden_size or 4 * hidden
    else:  # LLaMA-style, GPT-NeoX, Phi
        hidden, heads, layers = config.hidden_size, config.num_attention_heads, config.num_hidden_layers
        inner = config.intermediate_size
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    kv = getattr(config, "num_key_value_heads", None) or heads
    if mt == "falcon":
        kv = config.num_kv_heads if config.new_decoder_architecture else (1 if config.multi_query else heads)
    return {"hidden": hidden, "heads": heads, "kv": kv, "head_dim": head_dim, "inner": inner, "layers": layers}


def expected_linear_shapes(config: Any) -> dict[str, tuple[int, int]]:
    """``(out, in)`` that each linear role must have."""
    g = geometry(config)
    d, q, kv, inner = g["hidden"], g["heads"] * g["head_dim"], g["kv"] * g["head_dim"], g["inner"]
    return {
        "attn.q": (q, d),
        "attn.k": (kv, d),
        "attn.v": (kv, d),
        "attn.o": (d, q),
        "attn.qkv": (q + 2 * kv, d),
        "mlp.gate": (inner, d),
        "mlp.up": (inner, d),
        "mlp.down": (d, inner),
    }


#: tiny configurations of the fused-projection layouts, Falcon's three variants included
def fused_cases() -> dict[str, dict[str, Any]]:
    from llm_adapters import model_families

    fams = model_families()
    falcon = dict(fams["falcon"].tiny_config)
    return {
        "gpt2": dict(fams["gpt2"].tiny_config),
        "bloom": dict(fams["bloom"].tiny_config),
        "gpt_neox": dict(fams["gpt_neox"].tiny_config),
        "falcon-grouped": falcon,  # Falcon-40B layout: 4 heads, 2 kv heads
        "falcon-multi-query": {**falcon, "new_decoder_architecture": False, "multi_query": True},  # Falcon-7B
        "falcon-per-head": {**falcon, "new_decoder_architecture": False, "multi_query": False, "num_kv_heads": 4},
    }


#: roles a family leaves unmapped on purpose (see each family's docstring)
UNMAPPED = {
    "bloom": {"mlp.gate"},
    "falcon": {"mlp.gate", "norm.attn", "norm.mlp"},
    "gpt2": {"mlp.gate"},
    "gpt_neo": {"mlp.gate", "attn.qkv"},
    "gpt_neox": {"mlp.gate"},
    "gptj": {"mlp.gate", "attn.qkv", "norm.mlp"},
    "llama": {"attn.qkv"},
    "opt": {"mlp.gate", "attn.qkv"},
    "phi": {"mlp.gate", "attn.qkv", "norm.mlp"},
}


def _resolve(model: nn.Module, family: ModelFamily, role: str) -> list[tuple[str, str | None, nn.Module]]:
    sites = resolve_targets(model, [Placement(role, "parallel")], family, adapter="test")
    return [(s.module_path, s.part, model.get_submodule(s.module_path)) for s in sites]


def check_roles(model: nn.Module, family: ModelFamily, unmapped: set[str]) -> None:
    """Every role the family maps resolves, once per block, to a module of the right shape; the others
    are exactly ``unmapped``."""
    config = model.config
    g = geometry(config)
    shapes = expected_linear_shapes(config)
    assert {r for r in ROLES if not family.resolves(r)} == unmapped
    blocks = model.get_submodule(family.blocks)
    assert isinstance(blocks, nn.ModuleList) and len(blocks) == g["layers"]
    for role in ROLES:
        if role in unmapped:
            continue
        sites = _resolve(model, family, role)
        assert len(sites) == g["layers"], role
        assert len({(p, part) for p, part, _ in sites}) == len(sites)
        for i, (path, part, module) in enumerate(sites):
            assert path.startswith(f"{family.blocks}.{i}"), (role, path)
            if role == "block":
                assert module is blocks[i]
            elif role.startswith("norm."):
                weight = getattr(module, "weight", None)
                size = tuple(weight.shape) if weight is not None else tuple(module.normalized_shape)
                assert size == (g["hidden"],), (role, path)
            elif part is None:
                assert linear_shape(module) == shapes[role], (role, path)
            else:  # a part of the fused projection
                assert linear_shape(module) == shapes["attn.qkv"], (role, path)
                rows = family.part_indices("attn.qkv", part, config)
                assert rows.numel() == shapes[role][0], (role, path)


def check_modules_are_used(model: nn.Module, family: ModelFamily, ids: torch.Tensor) -> None:
    """Each resolved module runs in the forward pass (the roles point at the live computation)."""
    called: set[str] = set()
    handles = []
    for role in ROLES:
        if family.resolves(role):
            for path, _, module in _resolve(model, family, role):
                handles.append(module.register_forward_hook(lambda *_, p=path: called.add(p)))
    expected = {p for r in ROLES if family.resolves(r) for p, _, _ in _resolve(model, family, r)}
    with torch.no_grad():
        model(input_ids=ids)
    for h in handles:
        h.remove()
    assert called == expected

"""The default placements of the adapter types, in roles, and how they resolve on each family.

The roles are the ones the adapter plugins use by default; ``docs/placements.md`` shows the result per
family (its rows are rendered by :func:`render_row`, and a test checks that the page matches).
"""

from __future__ import annotations

from torch import nn

from llm_adapters import Placement
from llm_adapters.engine.targets import resolve_targets
from llm_adapters.family import ModelFamily

#: column -> placements in roles; ``mlp.gate`` is used only where the family has a gate
DEFAULT_PLACEMENTS: dict[str, tuple[tuple[str, str], ...]] = {
    "LoRA": (("attn.q", "parallel"), ("attn.v", "parallel")),
    "Series / AdapterH": (("mlp.gate", "pre"), ("mlp.up", "pre"), ("mlp.down", "post")),
    "AdapterP": (("mlp.down", "post"),),
    "Parallel (reference)": (("attn.q", "parallel"), ("attn.k", "parallel"), ("attn.v", "parallel")),
    "Parallel (paper's best)": (("mlp.up", "parallel"), ("mlp.down", "parallel")),
}

#: seed-reference section 2: the reference's default target modules per model type (module-name suffixes,
#: with "pre" / "post" for the series adapter's kind). "M" marks the single-entry fused LoRA rewrite.
REFERENCE_DEFAULTS: dict[str, dict[str, set[str]]] = {
    "llama": {
        "LoRA": {"q_proj", "v_proj"},
        "Series / AdapterH": {"gate_proj (pre)", "up_proj (pre)", "down_proj (post)"},
        "AdapterP": {"down_proj (post)"},
        "Parallel (reference)": {"q_proj", "v_proj", "k_proj"},
    },
    "bloom": {
        "LoRA": {"query_key_value (M)"},
        "Series / AdapterH": {"dense_h_to_4h (pre)", "dense_4h_to_h (post)"},
        "AdapterP": {"dense_4h_to_h (post)"},
        "Parallel (reference)": {"query_key_value"},
    },
    "gptj": {
        "LoRA": {"q_proj", "v_proj"},
        "Series / AdapterH": {"fc_in (pre)", "fc_out (post)"},
        "AdapterP": {"fc_out (post)"},
        "Parallel (reference)": {"q_proj", "v_proj", "k_proj"},
    },
    "gpt_neo": {
        "LoRA": {"q_proj", "v_proj"},
        "Series / AdapterH": {"c_fc (pre)", "c_proj (post)"},
        "AdapterP": {"c_proj (post)"},
        "Parallel (reference)": {"q_proj", "v_proj", "k_proj"},
    },
    "opt": {
        "LoRA": {"q_proj", "v_proj"},
        "Series / AdapterH": {"fc1 (pre)", "fc2 (post)"},
        "AdapterP": {"fc2 (post)"},
        "Parallel (reference)": {"q_proj", "v_proj", "k_proj"},
    },
    # the reference's only defaults for these two: LoRA through the fused rewrite; nothing for the others
    "gpt2": {"LoRA": {"c_attn (M)"}},
    "gpt_neox": {"LoRA": {"query_key_value (M)"}},
}


def placements(family: ModelFamily, column: str) -> list[Placement]:
    return [Placement(role, kind) for role, kind in DEFAULT_PLACEMENTS[column] if family.resolves(role)]


def resolved(model: nn.Module, family: ModelFamily, column: str) -> list[tuple[str, str | None, str]]:
    """``(path inside the block, part, kind)`` of the first block's sites, in placement order."""
    prefix = f"{family.blocks}.0."
    sites = resolve_targets(model, placements(family, column), family, adapter=column)
    return [(s.module_path[len(prefix) :], s.part, s.kind) for s in sites if s.module_path.startswith(prefix)]


def _shows_kind(column: str) -> bool:
    return column in ("Series / AdapterH", "AdapterP")


def render_cell(model: nn.Module, family: ModelFamily, column: str) -> str:
    return ", ".join(
        f"`{path}{f'[{part}]' if part else ''}`" + (f" ({kind})" if _shows_kind(column) else "")
        for path, part, kind in resolved(model, family, column)
    )


def render_row(model: nn.Module, family: ModelFamily) -> str:
    """The start of the family's row in ``docs/placements.md`` (the page adds a last column, the source)."""
    cells = [render_cell(model, family, column) for column in DEFAULT_PLACEMENTS]
    return "| " + " | ".join([f"**{family.name}**", *cells]) + " |"

"""The reference's default placements (seed-reference section 2) are what the default roles resolve to, and
``docs/placements.md`` shows what the roles resolve to on every family."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_adapters import Placement, model_families
from llm_adapters.engine.targets import resolve_targets
from llm_adapters.testing import tiny_model

from .helpers import EXPECTED_FAMILIES
from .placements import DEFAULT_PLACEMENTS, REFERENCE_DEFAULTS, render_row, resolved

DOC = Path(__file__).resolve().parents[2] / "docs" / "placements.md"


def _reference_cases() -> list[tuple[str, str]]:
    return [(fam, col) for fam, cols in sorted(REFERENCE_DEFAULTS.items()) for col in cols]


@pytest.mark.parametrize(("name", "column"), _reference_cases())
def test_default_roles_resolve_to_the_reference_modules(name: str, column: str) -> None:
    family = model_families()[name]
    model = tiny_model(family)
    ours = resolved(model, family, column)
    reference = REFERENCE_DEFAULTS[name][column]
    fused_rewrite = {r[: -len(" (M)")] for r in reference if r.endswith(" (M)")}
    if fused_rewrite:
        # the reference's single-entry rewrite meant "LoRA on the query and value rows of the fused
        # projection" (and on BLOOM / GPT-NeoX picked the wrong rows); the roles give exactly those parts
        assert {(path.rsplit(".", 1)[-1], part) for path, part, _ in ours} == {
            (m, p) for m in fused_rewrite for p in "qv"
        }
        return
    series = column.startswith("Series") or column == "AdapterP"
    leaves = {path.rsplit(".", 1)[-1] + (f" ({kind})" if series else "") for path, _, kind in ours}
    assert leaves == reference
    if any(part for _, part, _ in ours):
        # BLOOM's reference Parallel default wraps the whole fused projection: that is the role attn.qkv
        whole = resolve_targets(model, [Placement("attn.qkv", "parallel")], family, adapter="parallel")
        assert {s.module_path.rsplit(".", 1)[-1] for s in whole} == reference and all(s.part is None for s in whole)


@pytest.mark.parametrize("name", sorted(EXPECTED_FAMILIES))
def test_every_default_placement_resolves(name: str) -> None:
    family = model_families()[name]
    model = tiny_model(family)
    for column, roles in DEFAULT_PLACEMENTS.items():
        needed = [role for role, _ in roles if role != "mlp.gate"]
        assert all(family.resolves(role) for role in needed), (name, column)
        assert len(resolved(model, family, column)) == len(roles) - (0 if family.resolves("mlp.gate") else 1) * (
            "mlp.gate" in dict(roles)
        )


def test_mlp_up_and_down_are_the_mlp_input_and_output() -> None:
    """Without a gate, mlp.up must be the MLP's input projection and mlp.down its output projection."""
    expected = {
        "bloom": ("dense_h_to_4h", "dense_4h_to_h"),
        "falcon": ("dense_h_to_4h", "dense_4h_to_h"),
        "gpt2": ("c_fc", "c_proj"),
        "gpt_neo": ("c_fc", "c_proj"),
        "gpt_neox": ("dense_h_to_4h", "dense_4h_to_h"),
        "gptj": ("fc_in", "fc_out"),
        "llama": ("up_proj", "down_proj"),
        "opt": ("fc1", "fc2"),
        "phi": ("fc1", "fc2"),
    }
    got = {
        name: (fam.roles["mlp.up"].rsplit(".", 1)[-1], fam.roles["mlp.down"].rsplit(".", 1)[-1])
        for name, fam in model_families().items()
    }
    assert got == expected


@pytest.mark.parametrize("name", sorted(EXPECTED_FAMILIES))
def test_placements_page_shows_what_the_roles_resolve_to(name: str) -> None:
    family = model_families()[name]
    row = render_row(tiny_model(family), family)
    lines = DOC.read_text(encoding="utf-8").splitlines()
    assert any(line.startswith(row) for line in lines), f"docs/placements.md lacks the row\n{row}"

"""The model-family conformance kit: the checks every model family must pass on its tiny model.

Use it from a family plugin's tests::

    from llm_adapters.testing import FamilyConformance
    from my_families.mpt import FAMILY

    class TestMPT(FamilyConformance):
        family = FAMILY  # or: family_name = "mpt", for an installed family

Each check is one test method, run on the model that ``tiny_config`` builds and on one model per entry of
``variants`` (name -> keys overriding ``tiny_config``, for architectures whose layout depends on the
configuration):

* ``test_tiny_config_builds_a_model``: the family declares a ``tiny_config`` of one of its ``model_types``;
  it builds, its blocks sit at ``blocks``, one per layer, and a forward pass gives finite logits;
* ``test_roles_resolve_to_modules``: every role the family maps resolves (``role_sites``) to a module that
  exists, one per block, and ``role_of`` gives the role back (for a fused part: the fused role);
* ``test_role_modules_run_in_the_forward_pass``: each of those modules takes part in the forward pass;
* ``test_projection_shapes_match_the_dims``: the attention and MLP roles are ``nn.Linear`` or ``Conv1D``
  layers whose sizes agree with :meth:`ModelFamily.dims` (q: heads x head_dim, separate k / v: key/value
  heads x head_dim, o: back to the hidden size; a fused projection's parts: q of heads x head_dim, k and v
  of equal size, together every output feature once); norms have the hidden size;
* ``test_q_k_v_are_the_models_own``: the rows that ``attn.k`` and ``attn.v`` select (a separate module's
  output, or ``part_indices`` of the fused one) are the keys and values the model writes into its KV cache
  (keys at position 0, where rotary embeddings are the identity; values everywhere), and the rows of each
  query head of ``attn.q`` are that head's query: zeroed, the head's attention output no longer depends on
  the keys, while every other head's still does;
* ``test_dims_match_the_kv_cache``: with ``use_cache=True`` the cache holds ``num_layers`` layers of keys and
  values shaped ``(batch, num_key_value_heads, length, head_dim)``.

A check that cannot apply to a family is skipped by declaration: ``skip_checks`` maps a test method's name
to the reason (a family whose keys are normalised before the cache, for instance).
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
import torch
from torch import nn

from ..family import ROLES, AttentionDims, ModelFamily
from .family_probes import by_head, cache_layers, hooked, linear_out_in, norm_size, token_ids
from .models import tiny_model, tiny_model_from_config

#: the parameter id of the model built from ``tiny_config`` itself
TINY = "tiny"
_LINEAR_ROLES = ("attn.q", "attn.k", "attn.v", "attn.o", "attn.qkv", "mlp.gate", "mlp.up", "mlp.down")


class FamilyConformance:
    """Subclass and set ``family`` (or ``family_name``); see the module docstring."""

    family: ClassVar[ModelFamily | None] = None
    family_name: ClassVar[str | None] = None
    #: variant name -> keys overriding ``tiny_config``; every model-level check also runs on each variant
    variants: ClassVar[dict[str, dict[str, Any]]] = {}
    #: test method name -> reason, for checks that do not apply to this family
    skip_checks: ClassVar[dict[str, str]] = {}
    #: tolerance for "the same tensor"
    atol: ClassVar[float] = 1e-5

    # ---- set-up -----------------------------------------------------------------------------------
    @classmethod
    def resolve_family(cls) -> ModelFamily:
        """The family under test: ``family``, else the installed family named ``family_name``."""
        if cls.family is not None:
            return cls.family
        if not cls.family_name:
            pytest.fail(f"{cls.__name__}: set family = <ModelFamily> or family_name = '<installed family>'")
        from ..registry import model_families

        installed = model_families()
        if cls.family_name not in installed:
            names = ", ".join(sorted(installed)) or "none"
            pytest.fail(f"{cls.__name__}: model family {cls.family_name!r} is not installed (installed: {names})")
        return installed[cls.family_name]

    def build(self, family: ModelFamily, variant: str) -> nn.Module:
        """The tiny model of ``variant`` (``TINY``: the family's own ``tiny_config``)."""
        if variant == TINY:
            return tiny_model(family)
        return tiny_model_from_config({**family.tiny_config, **self.variants[variant]})

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "variant" in metafunc.fixturenames:
            metafunc.parametrize("variant", [TINY, *self.variants])

    @pytest.fixture(autouse=True)
    def _declared_skips(self, request: pytest.FixtureRequest) -> None:
        reason = self.skip_checks.get(request.function.__name__)
        if reason:
            pytest.skip(reason)

    @pytest.fixture
    def model_family(self) -> ModelFamily:
        return self.resolve_family()

    @pytest.fixture
    def model(self, model_family: ModelFamily, variant: str) -> nn.Module:
        if not model_family.tiny_config:
            pytest.skip(f"model family {model_family.name!r} declares no tiny_config (see the first check)")
        return self.build(model_family, variant)

    # ---- checks -----------------------------------------------------------------------------------
    def test_tiny_config_builds_a_model(self, model_family: ModelFamily, variant: str) -> None:
        family = model_family
        assert family.tiny_config, (
            f"model family {family.name!r} declares no tiny_config: give it the AutoConfig.for_model keywords of "
            "a tiny random model (2 layers, hidden size 32-64, every dropout 0); every conformance suite builds it"
        )
        config = {**family.tiny_config, **self.variants.get(variant, {})}
        assert config.get("model_type") in family.model_types, (
            f"tiny_config's model_type {config.get('model_type')!r} is not one of {family.model_types}"
        )
        model = self.build(family, variant)
        assert model.config.model_type in family.model_types
        blocks = model.get_submodule(family.blocks)
        assert isinstance(blocks, nn.ModuleList) and len(blocks) > 0, f"{family.blocks} is not a list of blocks"
        assert len(blocks) == family.dims(model.config).num_layers, "dims().num_layers is not the number of blocks"
        ids = token_ids(model)
        with torch.no_grad():
            logits = model(input_ids=ids).logits
        assert logits.shape[:2] == ids.shape and bool(torch.isfinite(logits).all())

    def test_roles_resolve_to_modules(self, model_family: ModelFamily, model: nn.Module) -> None:
        family = model_family
        count = len(model.get_submodule(family.blocks))  # type: ignore[arg-type]
        problems: list[str] = []
        for role in (r for r in ROLES if family.resolves(r)):
            try:
                sites = family.role_sites(model, role)
            except Exception as exc:  # a broken mapping is a finding, reported with the others
                problems.append(f"{role}: role_sites raised {exc!r}")
                continue
            if len(sites) != count:
                problems.append(f"{role}: {len(sites)} sites for {count} blocks")
            if len(set(sites)) != len(sites):
                problems.append(f"{role}: the same site twice in {sites}")
            for i, (path, part) in enumerate(sites):
                problems += self._site_problems(family, model, role, f"{family.blocks}.{i}", path, part)
        assert not problems, f"model family {family.name!r}:\n" + "\n".join(problems)

    @staticmethod
    def _site_problems(
        family: ModelFamily, model: nn.Module, role: str, block: str, path: str, part: str | None
    ) -> list[str]:
        """What is wrong with one site of ``role`` in the block at ``block`` (nothing: an empty list)."""
        if path != block and not path.startswith(block + "."):
            return [f"{role}: {path} is not inside block {block}"]
        try:
            model.get_submodule(path)
        except AttributeError:
            return [f"{role}: no module at {path}"]
        owner = family.role_of(path)
        if part is None and owner != role:
            return [f"{role}: role_of({path!r}) gives {owner!r}"]
        if part is not None and (role != f"attn.{part}" or owner not in family.fused):
            return [f"{role}: part {part!r} of {path}, whose role {owner!r} is not a fused projection of the family"]
        return []

    def test_role_modules_run_in_the_forward_pass(self, model_family: ModelFamily, model: nn.Module) -> None:
        family = model_family
        expected = {path for r in ROLES if family.resolves(r) for path, _ in family.role_sites(model, r)}
        with torch.no_grad(), hooked(model, outputs=expected) as seen:
            model(input_ids=token_ids(model))
        assert not expected - set(seen), f"modules the forward pass never calls: {sorted(expected - set(seen))}"

    def test_projection_shapes_match_the_dims(self, model_family: ModelFamily, model: nn.Module) -> None:
        family = model_family
        dims = family.dims(model.config)
        hidden, q_width = dims.hidden_size, dims.num_attention_heads * dims.head_dim
        kv_width = dims.num_key_value_heads * dims.head_dim
        want = {  # role -> (out, in); None: read from another role below
            "attn.q": (q_width, hidden),
            "attn.k": (kv_width, hidden),
            "attn.v": (kv_width, hidden),
            "attn.o": (hidden, q_width),
            "attn.qkv": (None, hidden),
            "mlp.gate": (None, hidden),
            "mlp.up": (None, hidden),
            "mlp.down": (hidden, None),
        }
        problems: list[str] = []
        seen: dict[str, tuple[int, int]] = {}
        for role in (r for r in _LINEAR_ROLES if r in family.roles):
            for path, _ in family.role_sites(model, role):
                got = linear_out_in(model.get_submodule(path))
                if got is None:
                    problems.append(f"{role}: {path} is a {type(model.get_submodule(path)).__name__}, not a Linear")
                    continue
                seen[role] = got
                if any(w is not None and w != g for w, g in zip(want[role], got, strict=True)):
                    expected = tuple("any" if w is None else w for w in want[role])
                    problems.append(f"{role}: {path} has (out, in) features {got}, expected {expected}")
        mlp_in = seen.get("mlp.down", (None, None))[1]
        for role in ("mlp.up", "mlp.gate"):
            if role in seen and mlp_in is not None and seen[role][0] != mlp_in:
                problems.append(f"{role} gives {seen[role][0]} features, mlp.down takes {mlp_in}")
        if "attn.qkv" in family.fused and "attn.qkv" in seen:
            problems += self._fused_problems(family, model, dims, seen["attn.qkv"][0])
        for role in (r for r in ("norm.attn", "norm.mlp") if r in family.roles):
            for path, _ in family.role_sites(model, role):
                size = norm_size(model.get_submodule(path))
                if size is not None and size != hidden:
                    problems.append(f"{role}: {path} normalises {size} features, the hidden size is {hidden}")
        assert not problems, f"model family {family.name!r} ({dims}):\n" + "\n".join(problems)

    @staticmethod
    def _fused_problems(family: ModelFamily, model: nn.Module, dims: AttentionDims, width: int) -> list[str]:
        """What is wrong with the sizes of the fused projection's parts (nothing: an empty list)."""
        rows = {p: family.part_indices("attn.qkv", p, model.config) for p in "qkv"}
        sizes = {p: int(r.numel()) for p, r in rows.items()}
        problems = []
        if sizes["q"] != dims.num_attention_heads * dims.head_dim:
            problems.append(f"attn.qkv: part q has {sizes['q']} rows, expected heads x head_dim")
        if (
            sizes["k"] != sizes["v"]
            or sizes["k"] % dims.head_dim
            or dims.num_key_value_heads % (sizes["k"] // dims.head_dim or 1)
        ):
            problems.append(f"attn.qkv: parts k / v have {sizes['k']} / {sizes['v']} rows, not whole key/value heads")
        every = torch.sort(torch.cat(list(rows.values()))).values
        if every.numel() != width or not torch.equal(every, torch.arange(width)):
            problems.append(f"attn.qkv: the parts' rows {sizes} do not cover its {width} output features once each")
        return problems

    def test_q_k_v_are_the_models_own(self, model_family: ModelFamily, model: nn.Module) -> None:
        family = model_family
        rows = {p: self._rows(family, model, f"attn.{p}") for p in "qkv" if family.resolves(f"attn.{p}")}
        if not rows:
            pytest.skip(f"model family {family.name!r} maps no query, key or value projection")
        head_dim = family.dims(model.config).head_dim
        ids = token_ids(model, length=4)
        with torch.no_grad(), hooked(model, outputs={path for path, _ in rows.values()}) as seen:
            keys, values = cache_layers(model(input_ids=ids, use_cache=True).past_key_values)[0]
        selected = {p: self._select(seen[path], index) for p, (path, index) in rows.items()}
        for part, cached, upto in (("k", keys, 1), ("v", values, ids.shape[1])):
            if part in selected:
                own = by_head(selected[part], head_dim)
                if cached.shape[1] != own.shape[1] and own.shape[1] and cached.shape[1] % own.shape[1] == 0:
                    own = own.repeat_interleave(cached.shape[1] // own.shape[1], dim=1)  # heads broadcast
                assert own.shape[1] == cached.shape[1], (
                    f"attn.{part}: {own.shape[1]} heads, the cache {cached.shape[1]}"
                )
                torch.testing.assert_close(
                    cached[:, :, :upto],
                    own[:, :, :upto],
                    atol=self.atol,
                    rtol=0,
                    msg=lambda m, part=part: (
                        f"attn.{part}: the rows the family selects on {rows[part][0]} are not the "
                        f"{'keys' if part == 'k' else 'values'} the model writes into its KV cache (check the role's "
                        f"path and the fused layout): {m}"
                    ),
                )
        if "q" in rows and "k" in rows and family.resolves("attn.o"):
            widths = {p: selected[p].shape[-1] for p in "qk"}
            self._check_query_heads(family, model, rows, widths, head_dim)

    @staticmethod
    def _rows(family: ModelFamily, model: nn.Module, role: str) -> tuple[str, torch.Tensor | None]:
        """Block 0's module path of ``role`` and the output rows that hold it (None: all of them)."""
        path, part = family.role_sites(model, role)[0]
        if part is None:
            return path, None
        return path, family.part_indices(family.role_of(path) or "attn.qkv", part, model.config)

    @staticmethod
    def _select(output: torch.Tensor, index: torch.Tensor | None) -> torch.Tensor:
        return output if index is None else output.index_select(-1, index)

    def _check_query_heads(
        self,
        family: ModelFamily,
        model: nn.Module,
        rows: dict[str, tuple[str, torch.Tensor | None]],
        widths: dict[str, int],
        head_dim: int,
    ) -> None:
        """Zeroing one query head's rows makes that head (and only it) deaf to a change of every key."""
        (q_path, q_index), (k_path, k_index) = rows["q"], rows["k"]
        q_rows = q_index if q_index is not None else torch.arange(widths["q"])
        k_rows = k_index if k_index is not None else torch.arange(widths["k"])
        o_path = family.role_sites(model, "attn.o")[0][0]
        ids = token_ids(model, length=4)
        noise = torch.randn(*ids.shape, widths["k"], generator=torch.Generator().manual_seed(1))
        heads = widths["q"] // head_dim
        for h in range(heads):
            contexts = []
            for scramble in (False, True):
                edits: dict[str, list[Any]] = {q_path: [(q_rows[h * head_dim : (h + 1) * head_dim], 0.0)]}
                if scramble:
                    edits.setdefault(k_path, []).append((k_rows, noise))
                with torch.no_grad(), hooked(model, inputs=[o_path], edits=edits) as seen:
                    model(input_ids=ids)
                contexts.append(by_head(seen[f"{o_path}:input"], head_dim))
            still, moved = contexts
            torch.testing.assert_close(
                moved[:, h],
                still[:, h],
                atol=self.atol,
                rtol=0,
                msg=lambda m, h=h: (
                    f"attn.q: head {h}'s rows zeroed, its attention output still depends on the keys: {m}"
                ),
            )
            deaf = [g for g in range(heads) if g != h and torch.allclose(moved[:, g], still[:, g], atol=self.atol)]
            assert not deaf, f"attn.q: zeroing head {h}'s rows also made heads {deaf} ignore the keys"

    def test_dims_match_the_kv_cache(self, model_family: ModelFamily, model: nn.Module) -> None:
        family = model_family
        dims = family.dims(model.config)
        ids = token_ids(model, batch=3, length=5)
        with torch.no_grad():
            layers = cache_layers(model(input_ids=ids, use_cache=True).past_key_values)
        assert dims.num_layers == len(layers), f"dims: {dims.num_layers} layers, the cache holds {len(layers)}"
        expected = (3, dims.num_key_value_heads, 5, dims.head_dim)
        for i, (keys, values) in enumerate(layers):
            got = (tuple(keys.shape), tuple(values.shape))
            assert got == (expected, expected), (
                f"layer {i}: the cache's keys / values are {got[0]} / {got[1]}, but family.dims gives "
                f"(batch, num_key_value_heads, length, head_dim) = {expected} ({dims})"
            )

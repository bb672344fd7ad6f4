"""The adapter conformance suite: the checks every adapter type must pass on every installed model family.

Use it from an adapter package's tests::

    from llm_adapters.testing.conformance import AdapterConformance

    class TestLoRAConformance(AdapterConformance):
        config = {"type": "lora", "r": 4, "dropout": 0.0}

The class collects one test per check and installed family (families come from the installed plugins, each
giving a ``tiny_config``). Checks that do not apply to a type are skipped *by declaration*: merging is
checked only when the attached adapter's layers declare ``mergeable = True`` (on each family). Set
``families`` to restrict the families, and ``skip_families`` (family name -> reason) to declare families the
type does not support. When the plugin set cannot be listed, collection fails with the reason; when no
installed family has a ``tiny_config``, each per-family check is collected as one skipped test saying so.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
import torch
from torch import nn

import llm_adapters as la

from ..engine import adapter_parameters
from ..errors import PluginError
from ..registry import get_adapter_type, model_families
from .models import tiny_model

#: the reason of the one skipped test per check when no installed family can build a tiny model
NO_FAMILIES = (
    "no installed model family declares a tiny_config, so there is no model to run the adapter on: install a "
    "family plugin (llm-adapters-families) or override family_names()"
)


def _installed_families() -> list[str]:
    """Every installed family with a ``tiny_config``. A plugin set the registry cannot be built from (two
    plugins registering one name, a failure under ``LLM_ADAPTERS_STRICT_PLUGINS``) is an error at collection,
    never an empty list: an empty list would silently collect no test."""
    try:
        families = model_families()
    except Exception as exc:
        raise PluginError(
            f"the adapter conformance suite cannot list the installed model families: {exc} "
            "(`llm-adapters plugins` shows the plugin set; fix it, or override family_names() on the test class)"
        ) from exc
    return sorted(n for n, f in families.items() if f.tiny_config)


def defaults_fall_short(adapter_type: str) -> str | None:
    """Why ``{"type": adapter_type}`` alone is not a valid config (a fusion, say, needs its adapters named), or
    None when it is: suites that try every installed type with its defaults skip such types, saying why."""
    try:
        get_adapter_type(adapter_type).config_class.model_validate({"type": adapter_type})
    except Exception as exc:
        return f"adapter type {adapter_type!r} needs more than its defaults: {str(exc).splitlines()[0]}"
    return None


def _works_alone(adapter_type: str) -> bool:
    return defaults_fall_short(adapter_type) is None


def _logits(model: nn.Module, ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask).logits


def _perturb(model: nn.Module, name: str, seed: int = 1) -> None:
    """Move the adapter away from its (often identity) initialisation so that its effect is visible."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in sorted(adapter_parameters(model, name).items()):
            p.add_(0.05 * torch.randn(p.shape, generator=g).to(p.dtype))


class AdapterConformance:
    """Subclass and set ``config``; see the module docstring."""

    config: ClassVar[dict[str, Any]]
    families: ClassVar[list[str] | None] = None
    skip_families: ClassVar[dict[str, str]] = {}
    #: tolerance for "identical" outputs
    atol: ClassVar[float] = 1e-5
    #: whether merging applies to this config; None: what the attached adapter's layers declare
    mergeable: ClassVar[bool | None] = None

    # ---- parametrisation --------------------------------------------------------------------------
    @classmethod
    def family_names(cls) -> list[str]:
        """The families to run on: every installed family with a ``tiny_config`` (override to choose)."""
        return _installed_families()

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "family" in metafunc.fixturenames:
            names = self.family_names()
            if not names:  # one skipped test that says why, rather than none
                metafunc.parametrize(
                    "family", [pytest.param(None, marks=pytest.mark.skip(reason=NO_FAMILIES), id="no-family")]
                )
                return
            metafunc.parametrize("family", names, indirect=True)

    @pytest.fixture
    def family(self, request: pytest.FixtureRequest) -> str:
        name = request.param
        if self.families is not None and name not in self.families:
            pytest.skip(f"{self.config['type']}: not run on family {name} (families = {self.families})")
        if name in self.skip_families:
            pytest.skip(f"{self.config['type']} on {name}: {self.skip_families[name]}")
        return name

    @pytest.fixture
    def inputs(self, family: str) -> tuple[torch.Tensor, torch.Tensor]:
        model = tiny_model(family)
        vocab = model.config.vocab_size
        g = torch.Generator().manual_seed(0)
        ids = torch.randint(3, min(vocab, 200), (2, 7), generator=g)
        mask = torch.ones_like(ids)
        return ids, mask

    def _attached(self, family: str, name: str = "default") -> nn.Module:
        model = tiny_model(family)
        la.attach(model, dict(self.config), name=name)
        _perturb(model, name)
        return model

    def _mergeable(self, model: nn.Module) -> bool:
        if self.mergeable is not None:
            return self.mergeable
        return la.list_adapters(model)[0].mergeable

    # ---- checks -----------------------------------------------------------------------------------
    def test_config_fields_are_described_and_defaults_valid(self) -> None:
        cls = get_adapter_type(self.config["type"]).config_class
        for name, info in cls.model_fields.items():
            assert info.description, f"{cls.__name__}.{name} has no description"
        cls.model_validate({"type": self.config["type"]})  # the defaults alone form a valid config

    def test_forward_backward_trains_only_adapter(self, family: str, inputs: Any) -> None:
        ids, mask = inputs
        model = self._attached(family)
        model.train()
        out = model(input_ids=ids, attention_mask=mask, labels=ids)
        assert torch.isfinite(out.loss)
        out.loss.backward()
        own = {id(p) for p in adapter_parameters(model, "default").values()}
        assert own, "the adapter has no parameters"
        trainable = [n for n, p in model.named_parameters() if p.requires_grad]
        assert all(id(p) in own for p in model.parameters() if p.requires_grad), trainable
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters() if id(p) in own)
        assert all(p.grad is None for p in model.parameters() if id(p) not in own)
        t, total = la.trainable_parameters(model)
        assert t == sum(p.numel() for p in adapter_parameters(model, "default").values())
        assert total == sum(p.numel() for p in model.parameters())

    def test_changes_outputs_and_disabled_gives_base(self, family: str, inputs: Any) -> None:
        ids, mask = inputs
        base = tiny_model(family)
        ref = _logits(base, ids, mask)
        la.attach(base, dict(self.config))
        _perturb(base, "default")
        adapted = _logits(base, ids, mask)
        assert not torch.allclose(adapted, ref, atol=self.atol), "a perturbed adapter must change the outputs"
        la.set_active(base, [])
        torch.testing.assert_close(_logits(base, ids, mask), ref, atol=self.atol, rtol=0)
        la.set_active(base, ["default"])
        torch.testing.assert_close(_logits(base, ids, mask), adapted, atol=self.atol, rtol=0)

    def test_save_load_round_trip_under_another_name(self, family: str, inputs: Any, tmp_path: Any) -> None:
        ids, mask = inputs
        model = self._attached(family)
        expected = _logits(model, ids, mask)
        la.save_adapter(model, tmp_path / "adapter")
        fresh = tiny_model(family)
        la.load_adapter(fresh, tmp_path / "adapter", name="other")
        assert [a.name for a in la.list_adapters(fresh)] == ["other"]
        torch.testing.assert_close(_logits(fresh, ids, mask), expected, atol=self.atol, rtol=0)

    def test_detach_restores_base(self, family: str, inputs: Any) -> None:
        ids, mask = inputs
        model = tiny_model(family)
        ref = _logits(model, ids, mask)
        keys = list(model.state_dict())
        flags = {n: p.requires_grad for n, p in model.named_parameters()}
        la.attach(model, dict(self.config))
        _perturb(model, "default")
        la.detach(model)
        assert list(model.state_dict()) == keys
        assert {n: p.requires_grad for n, p in model.named_parameters()} == flags
        torch.testing.assert_close(_logits(model, ids, mask), ref, atol=0, rtol=0)

    def test_merge_equals_unmerged(self, family: str, inputs: Any) -> None:
        ids, mask = inputs
        model = self._attached(family)
        if not self._mergeable(model):
            pytest.skip(f"{self.config}: its layers declare mergeable = False")
        before = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
        unmerged = _logits(model, ids, mask)
        la.merge(model)
        torch.testing.assert_close(_logits(model, ids, mask), unmerged, atol=1e-4, rtol=1e-4)
        la.merge(model)  # twice: a no-op
        torch.testing.assert_close(_logits(model, ids, mask), unmerged, atol=1e-4, rtol=1e-4)
        la.unmerge(model)
        for n, p in model.named_parameters():
            if n in before:
                torch.testing.assert_close(p.detach(), before[n], atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(_logits(model, ids, mask), unmerged, atol=self.atol, rtol=0)

    def test_two_adapters_of_different_types(self, family: str, inputs: Any) -> None:
        ids, mask = inputs
        others = [n for n in sorted(la.adapter_types()) if n != self.config["type"] and _works_alone(n)]
        if not others:
            pytest.skip("no other installed adapter type can be attached with its defaults alone")
        model = self._attached(family, name="first")
        one = _logits(model, ids, mask)
        la.attach(model, {"type": others[0]}, name="second")
        _perturb(model, "second", seed=2)
        both = _logits(model, ids, mask)
        assert not torch.allclose(both, one, atol=self.atol)
        la.set_active(model, ["first"])
        torch.testing.assert_close(_logits(model, ids, mask), one, atol=self.atol, rtol=0)
        la.detach(model, "second")
        torch.testing.assert_close(_logits(model, ids, mask), one, atol=self.atol, rtol=0)

    def test_gradient_checkpointing(self, family: str, inputs: Any) -> None:
        ids, mask = inputs
        grads = []
        for checkpointing in (False, True):
            model = self._attached(family)
            if checkpointing:
                if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.x
                    model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
                else:
                    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            model.train()
            model(input_ids=ids, attention_mask=mask, labels=ids).loss.backward()
            grads.append(
                {k: p.grad.clone() for k, p in adapter_parameters(model, "default").items() if p.grad is not None}
            )
        assert grads[0].keys() == grads[1].keys() and grads[0]
        for k in grads[0]:
            torch.testing.assert_close(grads[1][k], grads[0][k], atol=1e-5, rtol=1e-4)

    def test_generate(self, family: str, inputs: Any) -> None:
        ids, mask = inputs
        model = self._attached(family)
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=4, do_sample=False, pad_token_id=0)
        assert out.shape[0] == ids.shape[0] and out.shape[1] > ids.shape[1]
        assert torch.equal(out[:, : ids.shape[1]], ids)

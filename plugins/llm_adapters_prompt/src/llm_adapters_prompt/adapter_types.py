"""The three prompt-based adapter types ``prefix``, ``prompt`` and ``ptuning``.

They live apart from the torch modules they build (:mod:`llm_adapters_prompt.prefix`,
:mod:`llm_adapters_prompt.prompt`, :mod:`llm_adapters_prompt.ptuning`), which are imported only when an
adapter is created: registering the types (say, for ``llm-adapters plugins``) imports neither torch nor
transformers. The old modules re-export their type, so ``from llm_adapters_prompt.prefix import
PrefixTuning`` keeps working.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from llm_adapters import AdapterType

from .config import PrefixConfig, PromptConfig, PTuningConfig

if TYPE_CHECKING:
    import torch
    from torch import nn

    from llm_adapters import AttentionDims

    from .prefix import PrefixAdapter
    from .prompt import PromptTuningAdapter
    from .ptuning import PTuningAdapter


class _PeftPrompt(AdapterType):
    """What the three types share: PEFT's format through :mod:`llm_adapters_prompt.peft`."""

    peft_tensor_names: ClassVar[frozenset[str]] = frozenset({"prompt_embeddings"})

    def to_peft(  # type: ignore[override]
        self, config: Any, sites: list[dict[str, Any]], tensors: dict[str, torch.Tensor], model: nn.Module
    ) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        from .peft import to_peft

        return to_peft(config, tensors, model)

    def from_peft(  # type: ignore[override]
        self, peft_config: dict[str, Any], tensors: dict[str, torch.Tensor], model: nn.Module
    ) -> tuple[Any, dict[str, torch.Tensor]]:
        from .peft import from_peft

        return from_peft(self.name, peft_config, tensors, model)


class PrefixTuning(_PeftPrompt):
    """``prefix``: learned key/value prefixes in every attention layer (model-level, not mergeable)."""

    name: ClassVar[str] = "prefix"
    config_class = PrefixConfig
    description: ClassVar[str] = "Prefix tuning (Li & Liang, 2021): learned keys and values in every attention layer"
    model_level: ClassVar[bool] = True
    peft_type: ClassVar[str | None] = "PREFIX_TUNING"

    def create_model_adapter(  # type: ignore[override]
        self, config: PrefixConfig, model: nn.Module, dims: AttentionDims | None
    ) -> PrefixAdapter:
        if dims is None:
            model_type = getattr(getattr(model, "config", None), "model_type", None)
            raise ValueError(
                f"adapter 'prefix': no installed model family covers model_type {model_type!r}; prefix tuning needs "
                "the number of layers, key/value heads and the head size from a model family plugin (install "
                "llm-adapters-families, or register a family for this model type)"
            )
        import torch

        from .prefix import PrefixAdapter, own_key_values
        from .text_init import init_ids

        module = PrefixAdapter(config, dims)
        if config.init == "text":
            ids = init_ids(config, model)
            weight = module.encoder.embedding.weight
            if weight.device.type != "meta":
                with torch.no_grad():
                    weight.copy_(own_key_values(model, ids))
        return module


class PromptTuning(_PeftPrompt):
    """``prompt``: learned input embeddings before the real tokens (model-level, not mergeable)."""

    name: ClassVar[str] = "prompt"
    config_class = PromptConfig
    description: ClassVar[str] = "Prompt tuning (Lester et al., 2021): learned embeddings before the input"
    model_level: ClassVar[bool] = True
    peft_type: ClassVar[str | None] = "PROMPT_TUNING"

    def create_model_adapter(  # type: ignore[override]
        self, config: PromptConfig, model: nn.Module, dims: AttentionDims | None
    ) -> PromptTuningAdapter:
        import torch

        from .prompt import PromptTuningAdapter
        from .text_init import init_ids

        words = model.get_input_embeddings()
        module = PromptTuningAdapter(config, words.embedding_dim)
        if config.init == "text":
            ids = init_ids(config, model)
            if words.weight.device.type != "meta":
                index = torch.tensor(ids, device=words.weight.device)
                with torch.no_grad():
                    module.embedding.weight.copy_(words.weight[index].float())
        return module


class PTuning(_PeftPrompt):
    """``ptuning``: virtual tokens from a trained MLP or LSTM prompt encoder (model-level, not mergeable)."""

    name: ClassVar[str] = "ptuning"
    config_class = PTuningConfig
    description: ClassVar[str] = "P-tuning (Liu et al., 2021): virtual tokens from an MLP or LSTM prompt encoder"
    model_level: ClassVar[bool] = True
    peft_type: ClassVar[str | None] = "P_TUNING"

    def create_model_adapter(  # type: ignore[override]
        self, config: PTuningConfig, model: nn.Module, dims: AttentionDims | None
    ) -> PTuningAdapter:
        from .ptuning import PTuningAdapter

        return PTuningAdapter(config, model.get_input_embeddings().embedding_dim)

"""Prefix tuning, prompt tuning and P-tuning in HF PEFT's format, both ways; plain JSON and tensors, no PEFT import.

PEFT stores one tensor for all three, ``prompt_embeddings``, the encoder's output over the virtual tokens (with
``inference_mode`` true PEFT reads it back as that output, whatever encoder produced it):

* ``PREFIX_TUNING``: ``(nv, L * 2 * KV * d)``, viewed by PEFT as ``(nv, L * 2, KV, d)`` with the key of layer
  ``l`` at ``2 l`` and its value at ``2 l + 1``; ours is ``(nv, L, 2, KV, d)``, the same memory layout, so the
  table passes unchanged. Under grouped-query attention PEFT's ``num_attention_heads`` is ``KV`` and its
  ``token_dim`` is ``KV * d``.
* ``PROMPT_TUNING`` and ``P_TUNING``: ``(nv, hidden)``, the virtual-token input embeddings.

What PEFT's form loses (the prefix's reparameterisation MLP, the P-tuning prompt encoder) is kept in our extra
file (keys ``llm_adapters.<our key>``), so an adapter saved here loads back here exactly and trainable. A
directory PEFT wrote holds only the output: a prefix loads as a plain prefix with PEFT's position convention
(``positions='after_prefix'``), a P-tuning adapter as a prompt-tuning adapter with the same table (the same
outputs; its encoder is not in the file).
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from llm_adapters.engine.targets import MODEL_LEVEL_ATTR

from .config import PrefixConfig, PromptConfig, PTuningConfig

TABLE = "prompt_embeddings"
EXTRA = "llm_adapters."
PEFT_TYPES = {"prefix": "PREFIX_TUNING", "prompt": "PROMPT_TUNING", "ptuning": "P_TUNING"}
#: our file key of the parameter that is exactly PEFT's table (types without an encoder in front of it)
PLAIN_TABLE = {"prefix": "encoder.embedding.weight", "prompt": "embedding.weight"}


def _key(rest: str) -> str:
    return f"{MODEL_LEVEL_ATTR}.{rest}"


def _dims(model: nn.Module) -> Any:
    from llm_adapters.registry import family_for_model_type

    config = getattr(model, "config", None)
    family = family_for_model_type(getattr(config, "model_type", None))
    if family is None:
        raise ValueError(
            f"no installed model family covers model_type {getattr(config, 'model_type', None)!r}; a prefix needs "
            "the model's layer and head counts from one"
        )
    return family.dims(config)


def _hidden(model: nn.Module) -> int:
    return int(model.get_input_embeddings().embedding_dim)


def _rebuilt(config: Any, tensors: dict[str, torch.Tensor], model: nn.Module) -> nn.Module:
    """A fresh module of the adapter holding ``tensors`` (our file keys), in eval mode, on the CPU."""
    if config.type == "prefix":
        from .prefix import PrefixAdapter

        module: nn.Module = PrefixAdapter(config, _dims(model))
    elif config.type == "prompt":
        from .prompt import PromptTuningAdapter

        module = PromptTuningAdapter(config, _hidden(model))
    else:
        from .ptuning import PTuningAdapter

        module = PTuningAdapter(config, _hidden(model))
    prefix = MODEL_LEVEL_ATTR + "."
    module.load_state_dict({k.removeprefix(prefix): v.to("cpu") for k, v in tensors.items()})
    return module.eval()


@torch.no_grad()
def to_peft(
    config: PrefixConfig | PromptConfig | PTuningConfig, tensors: dict[str, torch.Tensor], model: nn.Module
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """PEFT's config entries and tensors of a model-level adapter whose tensors (our file keys) are ``tensors``."""
    table = _rebuilt(config, tensors, model).prompt_table().detach().contiguous()  # (nv, width)
    nv = config.num_virtual_tokens
    out: dict[str, torch.Tensor] = {TABLE: table}
    plain = PLAIN_TABLE.get(config.type)
    if plain is None or (config.type == "prefix" and config.prefix_projection):
        out.update({EXTRA + k: v for k, v in tensors.items()})  # the encoder, for loading back trainable here
    if config.type == "prefix":
        d = _dims(model)
        _warn_if_positions_differ(config, model)
        peft_config: dict[str, Any] = {
            "num_virtual_tokens": nv,
            "token_dim": d.num_key_value_heads * d.head_dim,
            "num_transformer_submodules": 1,
            "num_attention_heads": d.num_key_value_heads,
            "num_layers": d.num_layers,
            "prefix_projection": False,  # the table is the projected output
            "encoder_hidden_size": config.encoder_hidden_size or d.hidden_size,
        }
        return peft_config, out
    common = {
        "num_virtual_tokens": nv,
        "token_dim": _hidden(model),
        "num_transformer_submodules": 1,
        "num_attention_heads": getattr(model.config, "num_attention_heads", None),
        "num_layers": getattr(model.config, "num_hidden_layers", None),
    }
    if config.type == "prompt":
        # RANDOM: PEFT would otherwise load a tokenizer to initialise a table the file replaces anyway
        return {**common, "prompt_tuning_init": "RANDOM", "prompt_tuning_init_text": None}, out
    return {
        **common,
        "encoder_reparameterization_type": config.encoder.upper(),
        "encoder_hidden_size": config.encoder_hidden_size or _hidden(model),
        "encoder_num_layers": config.encoder_num_layers,
        "encoder_dropout": config.encoder_dropout,
    }, out


def _warn_if_positions_differ(config: PrefixConfig, model: nn.Module) -> None:
    from .inputs import takes_positions

    if config.positions == "from_zero" and takes_positions(model):
        warnings.warn(
            "this prefix counts the real tokens' positions from zero; PEFT-based tools (PEFT, vLLM, TGI) count them "
            "after the prefix, so they will compute different outputs with this adapter (llm-adapters loads it "
            "exactly). Train with positions='after_prefix' for an adapter meant for those tools.",
            stacklevel=2,
        )


def from_peft(
    adapter_type: str, peft_config: dict[str, Any], tensors: dict[str, torch.Tensor], model: nn.Module
) -> tuple[PrefixConfig | PromptConfig | PTuningConfig, dict[str, torch.Tensor]]:
    """Our config and file keys for a PEFT directory of type ``adapter_type`` (ours, or one PEFT wrote)."""
    section = peft_config.get("llm_adapters")
    if section is not None:
        return _ours(section, tensors)
    return _foreign(adapter_type, peft_config, tensors, model)


def _ours(section: dict[str, Any], tensors: dict[str, torch.Tensor]) -> tuple[Any, dict[str, torch.Tensor]]:
    from llm_adapters.config import parse_config

    config = parse_config({**section["config"], "type": section["adapter_type"]}, lenient=True)
    extra = {k[len(EXTRA) :]: v for k, v in tensors.items() if k.startswith(EXTRA)}
    rest = {k: v for k, v in tensors.items() if not k.startswith(EXTRA) and k != TABLE}
    if extra:  # the encoder itself: exact, and trainable
        return config, {**extra, **rest}
    plain = PLAIN_TABLE.get(config.type)
    if plain is None or (config.type == "prefix" and config.prefix_projection):
        raise ValueError(
            f"the {config.type} adapter's encoder (llm_adapters_extra.safetensors) is missing beside "
            "adapter_model.safetensors; copy that file along with the directory"
        )
    if TABLE not in tensors:
        raise ValueError(f"the tensor {TABLE!r} is missing")
    return config, {_key(plain): tensors[TABLE], **rest}


def _foreign(
    adapter_type: str, peft_config: dict[str, Any], tensors: dict[str, torch.Tensor], model: nn.Module
) -> tuple[Any, dict[str, torch.Tensor]]:
    """A directory PEFT wrote: the table becomes a plain prefix or a prompt-tuning embedding."""
    if peft_config.get("num_transformer_submodules", 1) not in (1, None):
        raise ValueError(
            f"num_transformer_submodules={peft_config['num_transformer_submodules']} is an encoder-decoder "
            "adapter; llm-adapters adapts decoder-only causal LMs"
        )
    nv = peft_config.get("num_virtual_tokens")
    if not isinstance(nv, int) or nv < 1:
        raise ValueError(f"num_virtual_tokens must be a positive integer, got {nv!r}")
    if TABLE not in tensors:
        raise ValueError(f"the tensor {TABLE!r} is missing")
    table = tensors[TABLE]
    rest = {k: v for k, v in tensors.items() if k != TABLE}  # the core reports them as unexpected
    if adapter_type == "prefix":
        d = _dims(model)
        layers, width = peft_config.get("num_layers"), d.num_key_value_heads * d.head_dim
        if layers not in (None, d.num_layers) or peft_config.get("token_dim") not in (None, width):
            raise ValueError(
                f"the prefix was made for {layers} layers of key/value width {peft_config.get('token_dim')}; this "
                f"model has {d.num_layers} layers of {d.num_key_value_heads} key/value heads x {d.head_dim} = {width}"
            )
        expected = (nv, d.num_layers * 2 * width)
        _check_shape(table, expected, "prefix", d.num_layers, width)
        config = PrefixConfig(num_virtual_tokens=nv, positions="after_prefix")
        return config, {_key(PLAIN_TABLE["prefix"]): table, **rest}
    hidden = _hidden(model)
    if peft_config.get("token_dim") not in (None, hidden):
        raise ValueError(
            f"the virtual tokens were made for hidden size {peft_config['token_dim']}; this model's is {hidden}"
        )
    _check_shape(table, (nv, hidden), adapter_type, None, hidden)
    # P-tuning's file holds only the encoder output: it is that prompt-tuning table
    return PromptConfig(num_virtual_tokens=nv), {_key(PLAIN_TABLE["prompt"]): table, **rest}


def _check_shape(table: torch.Tensor, expected: tuple[int, int], what: str, layers: int | None, width: int) -> None:
    if tuple(table.shape) != expected:
        raise ValueError(
            f"{TABLE} has shape {tuple(table.shape)}, but a {what} of {expected[0]} virtual tokens on this model "
            f"has shape {expected}"
            + (f" ({layers} layers x 2 x {width})" if layers is not None else "")
            + "; the config's num_virtual_tokens and the tensor disagree, or the adapter is for another base model"
        )

"""Batched text generation for evaluation, and a streaming helper for interactive use.

:func:`generate` runs ``model.generate`` over prompts in batches: left padding with an attention mask (so
padding never changes a prompt's result), the KV cache, the model in eval mode (no dropout), greedy decoding
by default or beam search, and stopping at the end-of-sequence token. Prompts are batched in order of length,
so a batch holds prompts of similar length and little padding; results come back in the input order.

With ``stop_at_eos=False`` generation ignores EOS and always runs ``max_new_tokens`` (what the reference's
evaluation did, by accident: its GenerationConfig carried no EOS id); the text after EOS is then kept.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from transformers import GenerationConfig, TextStreamer


@dataclass(frozen=True)
class GenerationSettings:
    """How to generate. ``num_beams=1`` is greedy decoding."""

    max_new_tokens: int = 256
    num_beams: int = 1
    batch_size: int = 16
    stop_at_eos: bool = True
    skip_special_tokens: bool = False

    def __post_init__(self) -> None:
        for field_name in ("max_new_tokens", "num_beams", "batch_size"):
            value = getattr(self, field_name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"generation: {field_name} must be an integer >= 1, got {value!r}")


@dataclass
class Generated:
    """One prompt's result: the new text, its token ids (EOS and padding removed) and whether it ended
    with EOS."""

    text: str
    token_ids: list[int]
    stopped_at_eos: bool

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)


def eos_ids(model: Any, tokenizer: Any) -> list[int]:
    """Every token id that ends a sequence: the tokenizer's EOS and the model's generation config's."""
    ids: list[int] = []
    for value in (getattr(tokenizer, "eos_token_id", None), getattr(model.generation_config, "eos_token_id", None)):
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if v is not None and int(v) not in ids:
                ids.append(int(v))
    return ids


def pad_id(model: Any, tokenizer: Any) -> int:
    """The padding id: the tokenizer's, else the model's, else the first EOS id."""
    for value in (getattr(tokenizer, "pad_token_id", None), getattr(model.generation_config, "pad_token_id", None)):
        if isinstance(value, int):
            return value
    ends = eos_ids(model, tokenizer)
    if not ends:
        raise ValueError("generation: the tokenizer has neither a pad nor an EOS token to pad with")
    return ends[0]


def generation_config(model: Any, tokenizer: Any, settings: GenerationSettings) -> GenerationConfig:
    """An explicit config, so that sampling defaults shipped with a model never apply."""
    ends = eos_ids(model, tokenizer)
    return GenerationConfig(
        max_new_tokens=settings.max_new_tokens,
        do_sample=False,
        num_beams=settings.num_beams,
        early_stopping=settings.num_beams > 1,
        use_cache=True,
        pad_token_id=pad_id(model, tokenizer),
        # None falls back to the model's own EOS: generate() also lifts that one (see ``_no_eos``).
        eos_token_id=ends if settings.stop_at_eos else None,
    )


@contextmanager
def _no_eos(model: Any, active: bool) -> Iterator[None]:
    """Without EOS stopping, hide the model's default EOS id (transformers falls back to it) for the call."""
    if not active:
        yield
        return
    config = model.generation_config
    saved = config.eos_token_id
    config.eos_token_id = None
    try:
        yield
    finally:
        config.eos_token_id = saved


@contextmanager
def evaluating(model: Any) -> Iterator[Any]:
    """The model in eval mode within the block (dropout off), its previous mode restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield model
    finally:
        model.train(was_training)


@contextmanager
def left_padding(tokenizer: Any) -> Iterator[Any]:
    previous = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        yield tokenizer
    finally:
        tokenizer.padding_side = previous


def _device(model: Any) -> torch.device:
    return next(model.parameters()).device


def _trim(new_tokens: list[int], ends: Sequence[int], stop_at_eos: bool) -> tuple[list[int], bool]:
    """Cut a row of new tokens at its first EOS, dropping the padding that follows it in a batch. Without EOS
    stopping every row runs the full budget and is kept whole."""
    if stop_at_eos:
        for i, tok in enumerate(new_tokens):
            if tok in ends:
                return new_tokens[:i], True
    return new_tokens, False


def generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    settings: GenerationSettings | None = None,
    *,
    progress: bool | Callable[[int], None] = False,
    description: str = "generating",
) -> list[Generated]:
    """Generate a continuation for every prompt, in batches of ``settings.batch_size``.

    ``progress``: True shows a progress bar on stderr; a callable is called with the number of prompts
    finished after each batch.
    """
    settings = settings or GenerationSettings()
    if not prompts:
        return []
    config = generation_config(model, tokenizer, settings)
    ends = eos_ids(model, tokenizer)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]), reverse=True)
    results: list[Generated | None] = [None] * len(prompts)
    bar = _progress_bar(len(prompts), description) if progress is True else None
    device = _device(model)
    with evaluating(model), left_padding(tokenizer), _no_eos(model, not settings.stop_at_eos):
        for start in range(0, len(order), settings.batch_size):
            chunk = order[start : start + settings.batch_size]
            enc = tokenizer([prompts[i] for i in chunk], return_tensors="pt", padding=True)
            # input_ids, attention_mask: (batch, prompt_len), left-padded
            enc = {k: v.to(device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
            if "attention_mask" not in enc:
                enc["attention_mask"] = torch.ones_like(enc["input_ids"])
            out = model.generate(**enc, generation_config=config)  # (batch, prompt_len + new)
            new = out[:, enc["input_ids"].shape[1] :].tolist()
            for row, i in zip(new, chunk, strict=True):
                ids, stopped = _trim(row, ends, settings.stop_at_eos)
                text = tokenizer.decode(ids, skip_special_tokens=settings.skip_special_tokens)
                results[i] = Generated(text=text, token_ids=ids, stopped_at_eos=stopped)
            if bar is not None:
                bar.update(len(chunk))
            elif callable(progress):
                progress(min(start + len(chunk), len(order)))
    if bar is not None:
        bar.close()
    return [r for r in results if r is not None]


def _progress_bar(total: int, description: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="ex", file=sys.stderr, dynamic_ncols=True)


class _CallbackStreamer(TextStreamer):
    """Hands each finished piece of text to a callback instead of printing it."""

    def __init__(self, tokenizer: Any, on_text: Callable[[str], None]) -> None:
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self._on_text = on_text

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        if text:
            self._on_text(text)


def stream(
    model: Any,
    tokenizer: Any,
    prompt: str,
    on_text: Callable[[str], None],
    settings: GenerationSettings | None = None,
) -> Generated:
    """Generate for one prompt, calling ``on_text`` with each piece of text as soon as it is decoded.

    Beam search cannot stream (the best beam is known only at the end): with ``num_beams > 1`` the whole
    text is handed to ``on_text`` once, at the end.
    """
    settings = settings or GenerationSettings(max_new_tokens=256, batch_size=1)
    config = generation_config(model, tokenizer, settings)
    ends = eos_ids(model, tokenizer)
    device = _device(model)
    enc = tokenizer(prompt, return_tensors="pt")
    enc = {k: v.to(device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
    streamer = _CallbackStreamer(tokenizer, on_text) if settings.num_beams == 1 else None
    with evaluating(model):
        out = model.generate(**enc, generation_config=config, streamer=streamer)
    ids, stopped = _trim(out[0, enc["input_ids"].shape[1] :].tolist(), ends, True)
    text = tokenizer.decode(ids, skip_special_tokens=True)
    if streamer is None:
        on_text(text)
    return Generated(text=text, token_ids=ids, stopped_at_eos=stopped)

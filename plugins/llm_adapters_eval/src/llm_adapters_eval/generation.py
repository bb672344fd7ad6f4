"""Batched text generation for evaluation, and a streaming helper for interactive use.

:func:`generate` decodes many prompts, ``batch_size`` at a time, with left padding and an attention mask (so
padding never changes a prompt's result), the KV cache, the model in eval mode (no dropout), stopping at the
end-of-sequence token. Prompts are sorted by their length in tokens, so a batch holds prompts of similar length
and little padding; results come back in the input order.

* Greedy decoding and sampling (``num_beams=1``) go through :func:`llm_adapters_eval.decoding.decode`: a prompt
  that finishes leaves the batch at once, and the next waiting prompts join it, so the batch stays full and no
  prompt waits for the longest answer of its batch.
* Beam search goes through ``model.generate``, one length-sorted batch after another.

With ``stop_at_eos=False`` generation ignores EOS and always runs ``max_new_tokens`` (what the reference's
evaluation did, by accident: its GenerationConfig carried no EOS id); the text after EOS is then kept.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import GenerationConfig

from llm_adapters.errors import ConfigError

from .decoding import Decoded, Row, Sampling, decode, evaluating

__all__ = ["Generated", "GenerationSettings", "eos_ids", "evaluating", "generate", "pad_id", "stream"]


@dataclass(frozen=True)
class GenerationSettings:
    """How to generate. ``num_beams=1`` with ``temperature=0`` is greedy decoding; ``temperature > 0``
    samples (with ``top_k``, ``top_p``; ``seed`` makes it repeatable: prompt ``i`` of a call draws with
    ``seed + i``, whatever the batching). ``stop``: strings that end an answer, cut before them."""

    max_new_tokens: int = 256
    num_beams: int = 1
    batch_size: int = 16
    stop_at_eos: bool = True
    skip_special_tokens: bool = False
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None
    stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for field_name in ("max_new_tokens", "num_beams", "batch_size"):
            value = getattr(self, field_name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"generation: {field_name} must be an integer >= 1, got {value!r}")
        object.__setattr__(self, "stop", (self.stop,) if isinstance(self.stop, str) else tuple(self.stop))
        try:
            self.sampling(0)  # the sampling fields, checked once by the rules every row follows
        except ConfigError as exc:
            raise ConfigError(str(exc).replace("sampling:", "generation:", 1)) from None
        if self.num_beams > 1 and (self.temperature > 0 or self.stop):
            raise ConfigError(
                f"generation: beam search (num_beams={self.num_beams}) is deterministic and takes no sampling "
                "or stop strings; use num_beams=1 with temperature, top_p, top_k, seed or stop"
            )

    def sampling(self, index: int) -> Sampling:
        """The sampling of prompt ``index`` (its seed is ``seed + index``)."""
        seed = None if self.seed is None else self.seed + index
        return Sampling(self.temperature, self.top_p, self.top_k, seed, self.stop)


@dataclass
class Generated:
    """One prompt's result: the new text, its token ids (EOS and padding removed) and whether it ended
    with EOS. ``finish_reason``: "stop" (EOS or a stop string) or "length" (the budget ran out)."""

    text: str
    token_ids: list[int]
    stopped_at_eos: bool
    finish_reason: str = field(default="", compare=False)

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
    """Generate a continuation for every prompt, ``settings.batch_size`` prompts at a time, longest prompts
    first (sorted by their length in tokens, so prompts of similar length share a batch).

    Greedy and sampled decoding keep the batch full: a prompt that finishes leaves it and the next waiting
    prompts take its place (:func:`~llm_adapters_eval.decoding.decode` with ``max_batch``). Beam search runs
    batch after batch through ``model.generate``.

    ``progress``: True shows a progress bar on stderr; a callable is called with the number of prompts
    finished, every ``batch_size`` prompts and at the end.
    """
    settings = settings or GenerationSettings()
    if not prompts:
        return []
    encoded: list[list[int]] = tokenizer(list(prompts))["input_ids"]
    for i, ids in enumerate(encoded):
        if not ids:
            raise ConfigError(f"generation: prompt {i} ({prompts[i]!r}) has no tokens; give a non-empty prompt")
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]), reverse=True)
    results: list[Generated | None] = [None] * len(prompts)
    bar = _progress_bar(len(prompts), description) if progress is True else None
    done = 0

    def finished(index: int, result: Generated) -> None:
        nonlocal done
        results[index] = result
        done += 1
        if bar is not None:
            bar.update(1)
        elif callable(progress) and (done % settings.batch_size == 0 or done == len(prompts)):
            progress(done)

    with evaluating(model):
        if settings.num_beams == 1:
            _decode_all(model, tokenizer, order, encoded, settings, finished)
        else:
            for start in range(0, len(order), settings.batch_size):
                chunk = order[start : start + settings.batch_size]
                for i, result in zip(chunk, _beam_batch(model, tokenizer, chunk, encoded, settings), strict=True):
                    finished(i, result)
    if bar is not None:
        bar.close()
    return [r for r in results if r is not None]


def _decode_all(
    model: Any,
    tokenizer: Any,
    order: Sequence[int],
    encoded: Sequence[list[int]],
    settings: GenerationSettings,
    finished: Callable[[int, Generated], None],
) -> None:
    """Every prompt of ``order`` through :func:`~llm_adapters_eval.decoding.decode`, ``batch_size`` at a
    time, in that order; ``finished(prompt index, result)`` as each one ends."""
    rows = [Row(encoded[i], settings.max_new_tokens, settings.sampling(i)) for i in order]

    def ended(at: int, d: Decoded) -> None:
        finished(order[at], Generated(d.text, d.token_ids, d.stopped_at_eos, d.finish_reason))

    decode(
        model,
        tokenizer,
        rows,
        eos_ids=eos_ids(model, tokenizer),
        pad_id=pad_id(model, tokenizer),
        stop_at_eos=settings.stop_at_eos,
        skip_special_tokens=settings.skip_special_tokens,
        max_batch=settings.batch_size,
        on_finish=ended,
    )


def _beam_batch(
    model: Any, tokenizer: Any, chunk: Sequence[int], encoded: Sequence[list[int]], settings: GenerationSettings
) -> list[Generated]:
    """One batch of beam search through ``model.generate`` (left-padded, with the attention mask)."""
    config = generation_config(model, tokenizer, settings)
    ends = eos_ids(model, tokenizer)
    device = _device(model)
    width = max(len(encoded[i]) for i in chunk)
    pad = pad_id(model, tokenizer)
    ids = torch.tensor([[pad] * (width - len(encoded[i])) + encoded[i] for i in chunk], device=device)
    mask = torch.tensor([[0] * (width - len(encoded[i])) + [1] * len(encoded[i]) for i in chunk], device=device)
    with _no_eos(model, not settings.stop_at_eos):
        out = model.generate(input_ids=ids, attention_mask=mask, generation_config=config)  # (batch, width + new)
    results = []
    for row in out[:, width:].tolist():
        new, stopped = _trim(row, ends, settings.stop_at_eos)
        text = tokenizer.decode(new, skip_special_tokens=settings.skip_special_tokens)
        results.append(Generated(text, new, stopped, "stop" if stopped else "length"))
    return results


def _progress_bar(total: int, description: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="ex", file=sys.stderr, dynamic_ncols=True)


def stream(
    model: Any,
    tokenizer: Any,
    prompt: str,
    on_text: Callable[[str], None],
    settings: GenerationSettings | None = None,
) -> Generated:
    """Generate for one prompt, calling ``on_text`` with each piece of text as soon as it is final (decoded
    without special tokens); the pieces joined are the result's text.

    Beam search cannot stream (the best beam is known only at the end): with ``num_beams > 1`` the whole
    text is handed to ``on_text`` once, at the end.
    """
    settings = settings or GenerationSettings(max_new_tokens=256, batch_size=1)
    ids = tokenizer(prompt)["input_ids"]
    if settings.num_beams > 1:
        quiet = GenerationSettings(
            max_new_tokens=settings.max_new_tokens,
            num_beams=settings.num_beams,
            batch_size=1,
            stop_at_eos=settings.stop_at_eos,
            skip_special_tokens=True,
        )
        with evaluating(model):
            (result,) = _beam_batch(model, tokenizer, [0], [ids], quiet)
        on_text(result.text)
        return result

    def hand_out(_token: int, piece: str) -> None:
        if piece:
            on_text(piece)

    row = Row(ids, settings.max_new_tokens, settings.sampling(0), on_token=hand_out)
    (d,) = decode(
        model,
        tokenizer,
        [row],
        eos_ids=eos_ids(model, tokenizer),
        pad_id=pad_id(model, tokenizer),
        stop_at_eos=settings.stop_at_eos,
        skip_special_tokens=True,
    )
    return Generated(d.text, d.token_ids, d.stopped_at_eos, d.finish_reason)

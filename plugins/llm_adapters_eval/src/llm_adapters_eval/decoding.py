"""Step-wise batched decoding: many prompts in one batch, each with its own budget, sampling, stop strings,
adapter and streaming callback, where a row that has finished stops costing anything.

:func:`decode` left-pads the prompts, runs one forward pass over all of them (the prefill), then one token per
step with the KV cache (a transformers ``DynamicCache``). Positions are passed explicitly (``cumsum`` of the
attention mask, so a left-padded row sees the positions it would see alone), and after every step the rows that
finished are taken out of everything the next step reads: the input ids, the attention mask, the positions, the
cache (``batch_select_indices``) and the per-row adapter names, so the steps after a row's end no longer pay for
that row. With ``max_batch``, rows beyond it wait and join the running batch as places free up: their prompts
go through one forward pass together, and their cache rows are left-padded to the running batch's length and
appended to it, so the batch stays full and no row waits for the longest answer of its batch.

Greedy rows (temperature 0) take the arg-max of the logits, which gives exactly the tokens of transformers'
``generate(do_sample=False)``. Sampled rows apply temperature, then top-k, then top-p (nucleus) to their own
logits and draw with their own ``torch.Generator``, so a seeded row draws the same tokens alone or in any batch.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from llm_adapters.errors import ConfigError

from .batch import RunningBatch
from .model_calls import (
    BASE,
    evaluating,
    forward_parameters,
    new_cache,
    returned_cache,
    route_names,
)
from .sampling import choose, filter_logits, generators

__all__ = ["BASE", "Decoded", "Row", "Sampling", "decode", "evaluating", "filter_logits"]


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass
class Sampling:
    """How one row picks its tokens. ``temperature=0`` is greedy (the arg-max; the other fields but ``stop``
    are then ignored). With ``temperature > 0`` the logits are divided by it, cut to the ``top_k`` most likely
    tokens (0: no cut) and to the smallest set whose probability reaches ``top_p`` (1: no cut), and a token is
    drawn with a ``torch.Generator`` seeded by ``seed`` (None: torch's global random state). ``stop``: strings
    that end the row once the decoded text contains one; the text is cut before it."""

    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None
    stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _is_number(self.temperature) or self.temperature < 0:
            raise ConfigError(f"sampling: temperature must be a number >= 0 (0 = greedy), got {self.temperature!r}")
        if not _is_number(self.top_p) or not 0 < self.top_p <= 1:
            raise ConfigError(f"sampling: top_p must be a number in (0, 1] (1 = off), got {self.top_p!r}")
        if not isinstance(self.top_k, int) or isinstance(self.top_k, bool) or self.top_k < 0:
            raise ConfigError(f"sampling: top_k must be an integer >= 0 (0 = off), got {self.top_k!r}")
        if self.seed is not None and (not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0):
            raise ConfigError(f"sampling: seed must be an integer >= 0 or None, got {self.seed!r}")
        if isinstance(self.stop, str):
            self.stop = (self.stop,)
        self.stop = tuple(self.stop)
        bad = [s for s in self.stop if not isinstance(s, str) or not s]
        if bad:
            raise ConfigError(f"sampling: stop strings must be non-empty strings, got {bad[0]!r}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@dataclass
class Row:
    """One prompt to continue: its token ids (no padding), its budget of new tokens, how it samples, the
    adapter it runs with, and an optional streaming callback.

    ``adapter``: the name of an attached adapter for this row alone (the model's ``adapter_names`` routing).
    When any row of a batch names one, the rows with ``None`` run the base model (``"__base__"``); when none
    does, every row runs whatever adapters are active.

    ``on_token(token_id, piece)``: called once per generated token, the EOS that ends a row included, with the
    text that became final with it (may be ""). Text is held back while it may still change: an incomplete
    character, trailing whitespace, or the start of a stop string. The pieces of a row, joined, are its final
    text."""

    prompt_ids: list[int]
    max_new_tokens: int
    sampling: Sampling = field(default_factory=Sampling)
    adapter: str | None = None
    on_token: Callable[[int, str], None] | None = None

    def __post_init__(self) -> None:
        self.prompt_ids = [int(t) for t in self.prompt_ids]
        if not self.prompt_ids:
            raise ConfigError("decoding: a row's prompt has no tokens; give at least one token id")
        if not isinstance(self.max_new_tokens, int) or isinstance(self.max_new_tokens, bool) or self.max_new_tokens < 1:
            raise ConfigError(f"decoding: max_new_tokens must be an integer >= 1, got {self.max_new_tokens!r}")
        if self.adapter is not None and (not isinstance(self.adapter, str) or not self.adapter):
            raise ConfigError(f"decoding: adapter must be an adapter name or None, got {self.adapter!r}")


@dataclass
class Decoded:
    """One row's result. ``token_ids``: the generated tokens (the EOS that ended the row left out; with stop
    strings, the tokens that spelt the stop string kept). ``text``: their decoded text, cut before a stop string.
    ``finish_reason``: ``"stop"`` (EOS or a stop string) or ``"length"`` (the budget ran out).
    ``stop_string``: the stop string that ended the row, if one did."""

    token_ids: list[int]
    text: str
    finish_reason: str
    stop_string: str | None = None

    @property
    def stopped_at_eos(self) -> bool:
        return self.finish_reason == "stop" and self.stop_string is None


# ---- one row's progress ---------------------------------------------------------------------------------
class _RowState:
    """The tokens of one row so far, its text when a stop string or a callback needs it, and its end."""

    def __init__(self, row: Row, tokenizer: Any, ends: frozenset[int], skip_special_tokens: bool) -> None:
        self.row = row
        self.tokenizer = tokenizer
        self.ends = ends
        self.skip = skip_special_tokens
        self.stops = row.sampling.stop
        self.tokens: list[int] = []
        self.text = ""  # the text of ``tokens`` (cut before a stop string), decoded when needed
        self._text_of = 0  # how many tokens ``text`` was decoded from
        self.sent = ""  # the text handed to on_token so far
        self.finish_reason: str | None = None
        self.stop_string: str | None = None

    def current_text(self) -> str:
        if self.stop_string is None and self._text_of != len(self.tokens):
            self.text = self.tokenizer.decode(self.tokens, skip_special_tokens=self.skip)
            self._text_of = len(self.tokens)
        return self.text

    def push(self, token: int) -> bool:
        """Take the next token; False when the row has ended with it."""
        if token in self.ends:
            self.finish_reason = "stop"
        else:
            self.tokens.append(token)
            if self.stops:
                self._cut_at_stop(self.current_text())
            if self.finish_reason is None and len(self.tokens) >= self.row.max_new_tokens:
                self.finish_reason = "length"
        self._emit(token)
        return self.finish_reason is None

    def _cut_at_stop(self, text: str) -> None:
        found = [(at, stop) for stop in self.stops if (at := text.find(stop)) >= 0]
        if found:
            at, stop = min(found, key=lambda f: f[0])
            self.text = text[:at]
            self.finish_reason = "stop"
            self.stop_string = stop

    def _emit(self, token: int) -> None:
        callback = self.row.on_token
        if callback is None:
            return
        text = self.current_text()
        end = len(text) if self.finish_reason is not None else self._stable_end(text)
        piece = ""
        if end > len(self.sent) and text.startswith(self.sent):
            piece = text[len(self.sent) : end]
            self.sent += piece
        callback(token, piece)

    def _stable_end(self, text: str) -> int:
        """How much of ``text`` the next tokens can no longer change: not trailing whitespace or replacement
        characters (an incomplete UTF-8 sequence), nor a tail that may grow into a stop string."""
        end, previous = len(text), -1
        while end != previous:
            previous = end
            while end and (text[end - 1].isspace() or text[end - 1] == "\ufffd"):
                end -= 1
            for stop in self.stops:
                for n in range(min(len(stop) - 1, end), 0, -1):
                    if text.endswith(stop[:n], 0, end):
                        end -= n
                        break
        return end

    def result(self) -> Decoded:
        return Decoded(
            token_ids=list(self.tokens),
            text=self.current_text(),
            finish_reason=self.finish_reason or "length",
            stop_string=self.stop_string,
        )


def _device(model: Any) -> torch.device:
    return next(model.parameters()).device


class _Decoder:
    """One :func:`decode` call: the model's calling conventions, the rows' states and generators."""

    def __init__(
        self,
        model: Any,
        rows: Sequence[Row],
        new_state: Callable[[Row], _RowState],
        pad_id: int,
        on_finish: Callable[[int, Decoded], None] | None,
    ) -> None:
        self.model = model
        self.rows = list(rows)
        self.new_state = new_state
        self.states = [new_state(r) for r in rows]
        self.pad_id = int(pad_id)
        self.on_finish = on_finish
        self.names = route_names(model, self.rows)
        self.device = _device(model)
        self.generators = generators([r.sampling for r in rows], self.device)
        params = forward_parameters(model)
        self.positions = "position_ids" in params
        self.logits_to_keep = "logits_to_keep" in params
        self.cache_key = "past_key_values" if "past_key_values" in params and "cache" not in params else "cache"

    def _forward(
        self, live: list[int], ids: torch.Tensor, mask: torch.Tensor | None, positions: torch.Tensor, cache: Any
    ) -> tuple[torch.Tensor, Any]:
        inputs: dict[str, Any] = {"input_ids": ids, self.cache_key: cache, "use_cache": True}
        if mask is not None:
            inputs["attention_mask"] = mask
        if self.positions:
            inputs["position_ids"] = positions
        if self.logits_to_keep:
            inputs["logits_to_keep"] = 1
        if self.names is not None:
            inputs["adapter_names"] = [self.names[i] for i in live]
        output = self.model(**inputs)
        return output.logits[:, -1, :].float(), returned_cache(output, cache)  # (rows, vocab)

    def _advance(self, batch: RunningBatch, logits: torch.Tensor) -> RunningBatch | None:
        """Choose each row's next token, let the rows take it, and drop the rows that ended."""
        live = batch.live
        tokens = choose(logits, [self.states[i].row.sampling for i in live], [self.generators[i] for i in live])
        keep = []
        for at, (i, token) in enumerate(zip(live, tokens, strict=True)):
            if self.states[i].push(token):
                keep.append(at)
            elif self.on_finish is not None:
                self.on_finish(i, self.states[i].result())
        batch.next_ids = torch.tensor(tokens, dtype=torch.long, device=self.device).unsqueeze(1)
        kept = batch.keep(keep)
        if kept is not None:
            kept.mask = torch.cat([kept.mask, kept.mask.new_ones((len(kept.live), 1))], dim=1)
        return kept

    def prefill(self, indices: list[int]) -> RunningBatch | None:
        """The prompts of ``indices``, left-padded, through one forward pass, and their first tokens."""
        prompts = [self.rows[i].prompt_ids for i in indices]
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, prompt in enumerate(prompts):
            ids[row, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
            mask[row, width - len(prompt) :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)  # (rows, width)
        positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)  # (rows, width): a row's own positions
        padded = not bool(mask.all())  # as transformers does, no mask at all when nothing is padded
        logits, cache = self._forward(indices, ids, mask if padded else None, positions, new_cache(self.model))
        batch = RunningBatch(list(indices), cache, mask, positions[:, -1:], ids[:, -1:], padded)
        return self._advance(batch, logits)

    def step(self, batch: RunningBatch) -> RunningBatch | None:
        """One new token for every row of ``batch``."""
        positions = batch.last + 1
        logits, batch.cache = self._forward(
            batch.live, batch.next_ids, batch.mask if batch.padded else None, positions, batch.cache
        )
        batch.last = positions
        return self._advance(batch, logits)

    def add(self, rows: Sequence[Row]) -> list[int]:
        """Rows that arrive while decoding runs: their indices (after every earlier row's)."""
        start = len(self.rows)
        self.rows.extend(rows)
        self.states.extend(self.new_state(r) for r in rows)
        self.generators.extend(generators([r.sampling for r in rows], self.device))
        if self.names is not None or any(r.adapter is not None for r in rows):
            self.names = route_names(self.model, self.rows)
        return list(range(start, len(self.rows)))

    def run(self, max_batch: int, more: Callable[[int], Sequence[Row]] | None = None) -> None:
        """Every row, at most ``max_batch`` at a time: rows waiting join the running batch (refill) as soon as
        a few places are free, when its cache allows it, else when it has finished. ``more(free)``, polled
        before every step, hands over up to ``free`` rows that arrived since (continuous batching)."""
        pending = deque(range(len(self.rows)))
        refill_at = max(1, max_batch // 8)  # admit rows a few at a time: fewer, larger prefills
        batch: RunningBatch | None = None
        while True:
            if more is not None:
                free = max_batch - (len(batch.live) if batch is not None else 0) - len(pending)
                if free > 0:
                    pending.extend(self.add(more(free)))
            if not pending and batch is None:
                return
            room = max_batch - (len(batch.live) if batch is not None else 0)
            if pending and (batch is None or (room >= refill_at and batch.mergeable())):
                joining = self.prefill([pending.popleft() for _ in range(min(room, len(pending)))])
                if batch is None:
                    batch = joining
                elif joining is not None:
                    batch = batch.merge(joining)
                if batch is None:
                    continue
            batch = self.step(batch)


# ---- the entry point -------------------------------------------------------------------------------------------
def decode(
    model: Any,
    tokenizer: Any,
    rows: Sequence[Row],
    *,
    eos_ids: Sequence[int],
    pad_id: int,
    stop_at_eos: bool = True,
    skip_special_tokens: bool = True,
    max_batch: int | None = None,
    on_finish: Callable[[int, Decoded], None] | None = None,
    more: Callable[[int], Sequence[Row]] | None = None,
) -> list[Decoded]:
    """Continue every row; results in the order of ``rows``.

    By default all rows run as one batch. With ``max_batch``, at most that many run at once and the others
    wait in the order given, joining the running batch as rows finish (its KV cache grows by their rows, left-
    padded to a common length); models whose cache cannot take new rows (sliding-window layers, prompt-based
    adapters' virtual tokens) run the waiting rows when the batch has finished instead.

    ``eos_ids``: the tokens that end a row (with ``stop_at_eos``; without it every row runs its full budget and
    EOS tokens are kept). ``pad_id``: the id left padding uses (the attention mask hides it).
    ``skip_special_tokens``: how the text is decoded from the tokens. ``on_finish(index, result)``: called as
    each row ends. ``more(free)``: polled before every step while fewer than ``max_batch`` rows run, returns up
    to ``free`` rows that arrived since; they join the running batch (continuous batching, for a server), their
    indices and results following the earlier rows'.
    """
    if not rows:
        return []
    if max_batch is not None and (not isinstance(max_batch, int) or isinstance(max_batch, bool) or max_batch < 1):
        raise ConfigError(f"decoding: max_batch must be an integer >= 1 or None, got {max_batch!r}")
    ends = frozenset(int(e) for e in eos_ids) if stop_at_eos else frozenset()
    if more is not None and max_batch is None:
        raise ConfigError("decoding: rows that arrive while decoding runs (more=) need max_batch")
    decoder = _Decoder(model, rows, lambda r: _RowState(r, tokenizer, ends, skip_special_tokens), pad_id, on_finish)
    with evaluating(model):
        decoder.run(max_batch or len(rows), more)
    return [s.result() for s in decoder.states]

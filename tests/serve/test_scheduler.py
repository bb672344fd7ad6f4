"""The scheduler on its own: a batch's rows finish one by one (a short answer does not wait for the longest row
of its batch), EOS ends a row with ``stop``, and each row equals its local generation."""

from __future__ import annotations

import copy
import queue
from typing import Any

from llm_adapters_serve.protocol import GenerationRequest
from llm_adapters_serve.scheduler import Finished, Job, SamplingParams, Scheduler

from .conftest import BASE, Served

PROMPT = "What is 3 + 4?"


class Recorded(queue.Queue):  # type: ignore[type-arg]
    """A job's event queue that also writes every event, in order, into one log shared by the jobs."""

    def __init__(self, label: str, log: list[tuple[str, str, Any]]) -> None:
        super().__init__()
        self.label, self.log = label, log

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        self.log.append((self.label, *item))
        super().put(item, block, timeout)


def _done(log: list[tuple[str, str, Any]], label: str) -> tuple[int, Finished]:
    (found,) = [(i, value) for i, (who, kind, value) in enumerate(log) if who == label and kind == "done"]
    return found


def test_rows_finish_one_by_one_and_equal_local_generation(served: Served) -> None:
    full = served.local(BASE, PROMPT, 12).text
    others = served.local("alpha", PROMPT, 12).text + served.local("beta-dir", PROMPT, 12).text
    # the new end-of-sequence token: a character the base writes after its first, and no other row writes
    end_char = next(c for c in full[1:] if c not in others and c not in full[0])
    cut = full[: full.index(end_char)]
    host = copy.copy(served.host)  # the same model; one more end-of-sequence token for this batch
    host.eos_ids = [*served.host.eos_ids, served.tokenizer.convert_tokens_to_ids(end_char)]
    ids = served.host.encode(GenerationRequest(kind="completion", model=BASE, prompt=PROMPT))
    log: list[tuple[str, str, Any]] = []
    jobs = {
        "eos": Job(ids, 12, adapter=None, stream=True, events=Recorded("eos", log)),
        "short": Job(ids, 2, adapter="alpha", events=Recorded("short", log)),
        "long": Job(ids, 12, adapter="beta-dir", stream=True, events=Recorded("long", log)),
        "stop": Job(ids, 12, SamplingParams(stop=("@@",)), adapter="alpha", events=Recorded("stop", log)),
    }
    Scheduler(host).run_batch(list(jobs.values()))

    at_eos, eos = _done(log, "eos")
    assert eos == Finished(cut, "stop", len(cut))  # the char tokenizer: one token per character
    at_short, short = _done(log, "short")
    want = served.local("alpha", PROMPT, 2)
    assert short == Finished(want.text, "length", 2)
    at_long, long = _done(log, "long")
    want = served.local("beta-dir", PROMPT, 12)
    assert long == Finished(want.text, "length", len(want.token_ids))
    assert at_short < at_long and at_eos < at_long
    tokens_after_short = [e for e in log[at_short:] if e[:2] == ("long", "token")]
    assert len(tokens_after_short) >= 5, "the long row went on streaming after the short one had finished"
    streamed = "".join(value for who, kind, value in log if who == "long" and kind == "token")
    assert streamed == long.text
    assert not [e for e in log if e[0] in ("short", "stop") and e[1] == "token"], "no pieces for jobs not streaming"
    # a row with stop strings finishes with the batch, from decoding's own result
    at_stop, stopped = _done(log, "stop")
    assert at_stop > at_long and stopped.text == served.local("alpha", PROMPT, 12).text

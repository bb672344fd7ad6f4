"""Evaluating one task: by generation (batched) or by log-likelihood of the options."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from llm_adapters.errors import ConfigError
from llm_adapters.task import SCORING_MODES, Example, Task
from llm_adapters.template import Template, get_template

from .config import EvalConfig
from .generation import GenerationSettings, generate
from .loglik import choose, continuation_logprobs
from .results import TaskResult


# ---- one task -------------------------------------------------------------------------------------
def build_prompts(task: Task, examples: Sequence[Example], template: Template) -> list[str]:
    return [template.prompt(*task.prompt_fields(ex)) for ex in examples]


def evaluate_generation(
    model: Any,
    tokenizer: Any,
    task: Task,
    examples: Sequence[Example],
    config: EvalConfig,
    template: Template,
    *,
    run: str = "",
) -> TaskResult:
    """Generate for every example and score the answers (the configured mode decides ``correct``; the
    accuracy under every mode is kept for comparison)."""
    gen = config.generation_for(task)
    settings = GenerationSettings(
        max_new_tokens=gen.max_new_tokens,
        num_beams=gen.num_beams,
        batch_size=config.batch_size,
        stop_at_eos=gen.stop_at_eos,
        skip_special_tokens=gen.skip_special_tokens,
    )
    prompts = build_prompts(task, examples, template)
    start = time.perf_counter()
    outputs = generate(
        model, tokenizer, prompts, settings, progress=config.progress, description=f"{run} {task.name}".strip()
    )
    seconds = time.perf_counter() - start
    mode = config.scoring_mode
    records = []
    hits = dict.fromkeys(SCORING_MODES, 0)
    for ex, prompt, out in zip(examples, prompts, outputs, strict=True):
        verdicts = {m: task.score(out.text, ex, m) for m in SCORING_MODES}
        for m, v in verdicts.items():
            hits[m] += v.correct
        chosen = verdicts[mode]
        records.append(
            {
                "task": task.name,
                "index": ex.index,
                "run": run,
                "prompt": prompt,
                "generation": out.text,
                "prediction": chosen.prediction,
                "answer": ex.answer,
                "correct": chosen.correct,
                "scoring": mode,
                "new_tokens": out.num_tokens,
                "stopped_at_eos": out.stopped_at_eos,
            }
        )
    n = max(len(records), 1)
    return TaskResult(task, records, "generate", mode, seconds, {m: hits[m] / n for m in SCORING_MODES})


def evaluate_loglik(
    model: Any,
    tokenizer: Any,
    task: Task,
    examples: Sequence[Example],
    config: EvalConfig,
    template: Template,
    *,
    run: str = "",
) -> TaskResult:
    """Pick, for every example, the option whose continuation is most likely after the prompt."""
    prompts = build_prompts(task, examples, template)
    options = [task.options(ex) for ex in examples]
    target = config.loglik_target
    pairs = [(p, task.continuation(o, target)) for p, opts in zip(prompts, options, strict=True) for o in opts]
    start = time.perf_counter()
    scores = continuation_logprobs(
        model,
        tokenizer,
        pairs,
        batch_size=config.batch_size,
        progress=config.progress,
        description=f"{run} {task.name}".strip(),
    )
    seconds = time.perf_counter() - start
    normalize = config.normalize_for()
    records = []
    at = 0
    for ex, prompt, opts in zip(examples, prompts, options, strict=True):
        mine = scores[at : at + len(opts)]
        at += len(opts)
        best = opts[choose(mine, normalize)]
        records.append(
            {
                "task": task.name,
                "index": ex.index,
                "run": run,
                "prompt": prompt,
                "generation": task.continuation(best, config.loglik_target),
                "prediction": best.label,
                "answer": ex.answer,
                "correct": task.is_correct(best.label, ex.answer, "robust"),
                "scoring": "loglik",
                "option_scores": {
                    o.label: s.logprob if normalize == "sum" else s.mean for o, s in zip(opts, mine, strict=True)
                },
            }
        )
    result = TaskResult(task, records, "loglik", "loglik", seconds)
    result.accuracy_by_scoring = {"loglik": result.accuracy}
    return result


def evaluate_task(
    model: Any,
    tokenizer: Any,
    task: Task,
    examples: Sequence[Example],
    config: EvalConfig,
    template: Template,
    *,
    run: str = "",
) -> TaskResult:
    if config.method == "loglik" and task.multiple_choice:
        return evaluate_loglik(model, tokenizer, task, examples, config, template, run=run)
    return evaluate_generation(model, tokenizer, task, examples, config, template, run=run)


def resolve_template(name: str, tokenizer: Any) -> Template:
    """The prompt template ``name`` (bound to ``tokenizer`` when given); unknown names are a
    :class:`ConfigError`."""
    try:
        template = get_template(name)
        return template.bind(tokenizer) if tokenizer is not None else template
    except (KeyError, ValueError) as exc:
        raise ConfigError(str(exc.args[0] if exc.args else exc)) from None

"""Running a plan: train each method, evaluate the zero-shot base and every adapter on every task.

The model is loaded once. The zero-shot cells come first; then, per method, the adapter is trained with
``llm_adapters_train.training.train`` into ``<output>/<method>/adapter`` (and taken off the model), loaded
from there, and evaluated task by task with the evaluation plugin's ``evaluate_task``. After every training
and every cell, ``results.json`` and ``results.md`` are rewritten and the method's folder gets the evaluation
plugin's reports (``summary.json``, ``<task>.jsonl``, ``results.md``), so an interrupted run loses at most the
job it was in; ``--resume`` skips what is finished (and continues an interrupted training from its last
checkpoint). A method that fails to train or evaluate is recorded with its error and the others go on; the run
then ends with :class:`ReproduceError`.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from llm_adapters.fileio import OutputLock, read_utf8, write_json

from .errors import ReproduceError
from .grid import ZERO_SHOT
from .plan import MethodPlan, Plan, training_records
from .progress import Job, Progress
from .report import write_reports
from .results import Results

ADAPTER_FOLDER = "adapter"
DATA_FOLDER = "data"


def run_grid(
    plan: Plan,
    output: str | Path,
    *,
    resume: bool = False,
    progress: bool = False,
    echo: Callable[[str], None] = print,
    model: Any = None,
    tokenizer: Any = None,
) -> dict[str, Any]:
    """Run ``plan`` into ``output``; returns what ``results.json`` holds. ``progress``: the training and
    generation progress bars (the progress line of each job is always given to ``echo``). ``model`` /
    ``tokenizer``: a model already in memory instead of loading the plan's."""
    out = Path(output)
    results = Results.open(out, plan, resume=resume)  # every check on the folder, before the model loads
    out.mkdir(parents=True, exist_ok=True)
    with OutputLock(out, "reproduce"):
        return _Run(plan, results, progress=progress, echo=echo, model=model, tokenizer=tokenizer).run()


@contextlib.contextmanager
def _datasets_bars(show: bool) -> Iterator[None]:
    """The ``datasets`` library's progress bars (tokenising, filtering) on or off for the block."""
    from datasets.utils import logging as ds_logging

    was = ds_logging.is_progress_bar_enabled()
    (ds_logging.enable_progress_bar if show else ds_logging.disable_progress_bar)()
    try:
        yield
    finally:
        (ds_logging.enable_progress_bar if was else ds_logging.disable_progress_bar)()


def train_units(method: MethodPlan, n_records: int) -> float:
    """The examples a training processes: steps x batch size."""
    t = method.training
    n_train = max(1, n_records - (t["val_set_size"] if t["val_set_size"] >= 1 else t["val_set_size"] * n_records))
    if t.get("limit"):
        n_train = min(n_train, t["limit"])
    steps = t.get("max_steps") or math.ceil(t["num_epochs"] * math.ceil(n_train / t["batch_size"]))
    return float(steps * t["batch_size"])


class _Run:
    def __init__(
        self,
        plan: Plan,
        results: Results,
        *,
        progress: bool,
        echo: Callable[[str], None],
        model: Any,
        tokenizer: Any,
    ) -> None:
        self.plan = plan
        self.results = results
        self.out = results.out
        self.show_bars = progress
        self.echo = echo
        self.model = model
        self.tokenizer = tokenizer
        self.errors: dict[str, str] = {}
        self.train_file: Path = plan.train_data
        self.task_results: dict[str, dict[str, Any]] = {}
        self.jobs = self._jobs()
        self.progress = Progress(self.jobs, echo)

    # ---- the plan of jobs ---------------------------------------------------------------------------
    def _names(self) -> list[str]:
        return ([ZERO_SHOT] if self.plan.grid.zero_shot else []) + [m.name for m in self.plan.methods]

    def _trained(self, name: str) -> bool:
        from llm_adapters.files import is_adapter_dir

        folder = self.out / name / ADAPTER_FOLDER
        return self.results.training(name) is not None and is_adapter_dir(folder)

    def _jobs(self) -> list[Job]:
        jobs: list[Job] = []
        n_records = self.plan.train_records - (len(self.plan.overlap) if self.plan.grid.decontaminate else 0)
        config = self.plan.eval_config(self.out)
        for name in self._names():
            method = self._method(name)
            if method is not None:
                trained = self.results.training(name)
                steps = method.training.get("max_steps")
                what = f"training {method.adapter_type}" + (f" ({steps} steps)" if steps else "")
                job = Job("train", name, what, train_units(method, n_records))
                if self._trained(name):
                    job.done, job.seconds = True, (trained or {}).get("seconds")
                jobs.append(job)
            for task in self.plan.tasks:
                count = len(self.plan.examples[task.name])
                budget = config.generation_for(task).max_new_tokens
                job = Job("eval", name, f"evaluating {task.title} ({count} examples)", float(count * budget), task.name)
                if self.results.finished(name, task.name):
                    job.done, job.seconds = True, (self.results.cell(name, task.name) or {}).get("seconds")
                jobs.append(job)
        return jobs

    def _method(self, name: str) -> MethodPlan | None:
        return next((m for m in self.plan.methods if m.name == name), None)

    # ---- the run ------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        pending = [j for j in self.jobs if not j.done]
        done = len(self.jobs) - len(pending)
        if done:
            self.echo(f"resuming: {done} of {len(self.jobs)} jobs already finished in {self.out}")
        if pending:
            self._load_model()  # first: a model that does not load leaves the folder as it was
        self.results.save()  # from now on the folder says which grid it belongs to
        if pending:
            self.train_file = self._training_file()
        for name in self._names():
            try:
                method = self._method(name)
                if method is not None:
                    self._train(method)
                self._evaluate(name)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # one method's failure must not cost the others their results
                from llm_adapters_eval.runner import describe_error

                self.errors[name] = describe_error(exc)
                self.echo(f"{name}: FAILED: {self.errors[name]}")
                for job in self.jobs:
                    if job.method == name:
                        job.done = True  # nothing more to wait for from this method
        self.results.data["errors"] = dict(self.errors)
        self.results.save()
        write_reports(self.out, self.results.data, self.plan.tasks)
        if self.errors:
            details = "; ".join(f"{n}: {e}" for n, e in self.errors.items())
            raise ReproduceError(
                f"{len(self.errors)} method(s) failed: {details}. The other results are in {self.out}; fix the "
                "problem and run again with --resume to finish"
            )
        return self.results.data

    def _load_model(self) -> None:
        from llm_adapters_eval.runner import model_label

        given = self.model is not None
        if not given:
            from llm_adapters.models import ensure_pad_token, load_model

            self.echo(f"loading {self.plan.model or 'the default model'} ...")
            self.model, self.tokenizer = load_model(self.plan.model, dtype=self.plan.grid.dtype)
            ensure_pad_token(self.tokenizer)
        settings = self.results.data["settings"]
        settings["model_label"] = model_label(None if given else self.plan.model, self.model)
        settings["model_dtype"] = str(next(self.model.parameters()).dtype).removeprefix("torch.")

    def _training_file(self) -> Path:
        """The training data: the grid's file, or a copy without the records that repeat an evaluated
        problem (``<output>/data/train.json``)."""
        if not (self.plan.grid.decontaminate and self.plan.overlap):
            return self.plan.train_data
        needed = any(j.kind == "train" and not j.done for j in self.jobs)
        path = self.out / DATA_FOLDER / "train.json"
        if needed or not path.is_file():
            left_out = set(self.plan.overlap)
            records = training_records(self.plan.train_data)
            keep = [i for i in range(len(records)) if i not in left_out]
            path.parent.mkdir(parents=True, exist_ok=True)
            write_json(path, records.select(keep).to_list(), indent=1)
        return path

    # ---- training -----------------------------------------------------------------------------------
    def _train(self, method: MethodPlan) -> None:
        from llm_adapters.engine import detach, list_adapters
        from llm_adapters.files import is_adapter_dir
        from llm_adapters_train.run_config import TrainConfig
        from llm_adapters_train.training import METRICS_NAME, train

        job = next(j for j in self.jobs if j.kind == "train" and j.method == method.name)
        folder = self.out / method.name / ADAPTER_FOLDER
        if job.done:
            return
        if is_adapter_dir(folder) and (folder / METRICS_NAME).is_file():
            # trained by an interrupted run before it could record it: record it now
            self._record_training(method, json.loads(read_utf8(folder / METRICS_NAME)), folder)
            self.progress.end(job)
            return
        has_checkpoints = folder.is_dir() and any(p.is_dir() for p in folder.glob("checkpoint-*"))
        config = TrainConfig.model_validate(
            {
                **method.training,
                "model": self.plan.model,
                "dtype": self.plan.grid.dtype,
                "adapter": method.adapter_type,
                "adapter_options": method.adapter_options,
                "data": str(self.train_file),
                "output": str(folder),
                "resume": has_checkpoints,
                "overwrite": False,
                "progress": self.show_bars,
            }
        )
        self.progress.begin(job)
        try:
            # the training's own messages go with the progress lines; stdout is for the table
            with _datasets_bars(self.show_bars), contextlib.redirect_stdout(sys.stderr):
                result = train(config, model=self.model, tokenizer=self.tokenizer)
        finally:
            if any(a.name == "default" for a in list_adapters(self.model)):
                detach(self.model, "default")  # the model goes back to the base for the next job
        self.progress.end(job)
        self._record_training(method, result.metrics, folder, seconds=job.seconds)

    def _record_training(
        self, method: MethodPlan, metrics: dict[str, Any], folder: Path, seconds: float | None = None
    ) -> None:
        keys = ("global_step", "train_loss", "trainable_parameters", "total_parameters", "train_examples")
        info = {k: metrics.get(k) for k in keys}
        info["seconds"] = round(seconds if seconds is not None else metrics.get("wall_seconds") or 0.0, 1)
        info["adapter"] = str(folder.relative_to(self.out))
        plot = folder / "loss.png"
        info["loss_plot"] = str(plot.relative_to(self.out)) if plot.is_file() else None
        self.results.set_training(method.name, info)
        write_reports(self.out, self.results.data, self.plan.tasks, draw=False)

    # ---- evaluation ---------------------------------------------------------------------------------
    def _evaluate(self, name: str) -> None:
        from llm_adapters.engine import detach, list_adapters
        from llm_adapters.files import load_adapter
        from llm_adapters_eval.per_task import evaluate_task, resolve_template
        from llm_adapters_eval.runner import ADAPTER_NAME

        jobs = [j for j in self.jobs if j.kind == "eval" and j.method == name and not j.done]
        if not jobs:
            return
        folder = self.out / name
        config = self.plan.eval_config(folder, progress=self.show_bars)
        template = resolve_template(config.template_name, self.tokenizer)
        adapter = folder / ADAPTER_FOLDER if name != ZERO_SHOT else None
        if adapter is not None:
            load_adapter(self.model, adapter, name=ADAPTER_NAME)
        try:
            for job in jobs:
                task = next(t for t in self.plan.tasks if t.name == job.task)
                self.progress.begin(job)
                result = evaluate_task(
                    self.model, self.tokenizer, task, self.plan.examples[task.name], config, template, run=name
                )
                self.task_results.setdefault(name, {})[task.name] = result
                self._write_method_reports(name, config, adapter)
                self.results.add_cell(self._cell(name, result))
                self.progress.end(job)
                write_reports(self.out, self.results.data, self.plan.tasks, draw=False)
        finally:
            if adapter is not None and any(a.name == ADAPTER_NAME for a in list_adapters(self.model)):
                detach(self.model, ADAPTER_NAME)

    def _cell(self, name: str, result: Any) -> dict[str, Any]:
        from llm_adapters_eval.report import jsonl_name

        return {
            "method": name,
            "task": result.task.name,
            "title": result.task.title,
            "accuracy": result.accuracy,
            "correct": result.correct,
            "count": result.count,
            "scoring": result.scoring,
            "evaluation_method": result.method,
            "accuracy_by_scoring": dict(result.accuracy_by_scoring),
            "seconds": round(result.seconds, 2),
            "records": f"{name}/{jsonl_name(result.task)}",
        }

    def _earlier_result(self, name: str, task: Any) -> Any:
        """The result of a cell finished by an earlier run, from its records."""
        from llm_adapters_eval.results import TaskResult

        cell = self.results.cell(name, task.name)
        if cell is None or not (self.out / cell["records"]).is_file():
            return None
        text = read_utf8(self.out / cell["records"])
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
        return TaskResult(
            task, records, cell["evaluation_method"], cell["scoring"], cell["seconds"], cell["accuracy_by_scoring"]
        )

    def _write_method_reports(self, name: str, config: Any, adapter: Path | None) -> None:
        """The evaluation plugin's reports for this method's finished cells, in its folder."""
        from llm_adapters_eval.report import build_summary
        from llm_adapters_eval.report import write_reports as write_eval_reports
        from llm_adapters_eval.results import RunResult

        done = self.task_results.setdefault(name, {})
        for task in self.plan.tasks:
            if task.name not in done:
                earlier = self._earlier_result(name, task)
                if earlier is not None:
                    done[task.name] = earlier
        tasks = [t for t in self.plan.tasks if t.name in done]
        info = None
        if adapter is not None:
            method = self._method(name)
            info = {"path": str(adapter), "type": method.adapter_type if method else None}
        runs = [RunResult(name, info, [done[t.name] for t in tasks])]
        label = self.results.data["settings"].get("model_label")
        summary = build_summary(config, runs, tasks, model_name=label)
        write_eval_reports(self.out / name, summary, runs, tasks, chart=False)

"""Instruction data: loading, validation, the validation split, tokenisation with prompt masking, padding.

Records are in the reference format: ``instruction`` and ``output`` (strings, required), ``input`` (string,
optional, empty when absent) and ``answer`` (optional, kept for evaluation). Sources:

* a ``.json`` file (a list of records) or a ``.jsonl`` file (one record per line);
* a ``.parquet`` or ``.arrow`` file, or a directory written by ``datasets.save_to_disk`` or holding such files;
* a hub dataset name (``datasets.load_dataset``), where a hub is reachable.

A malformed record or a missing field is a :class:`DataError` naming the file and the record's index; so is a
JSON or JSONL file that is not UTF-8 (naming the byte's offset and line). Records whose ``instruction`` and
``output`` are both empty are skipped, with one warning giving their count and where they are.

Tokenisation (:func:`tokenize_record`) follows the reference with its bugs left out: the full text
``template.render(...)`` is tokenised and truncated to ``cutoff_len``; EOS is appended when the last token is
not EOS already and the text is shorter than ``cutoff_len`` (so truncated samples end without EOS, as in the
reference); ``labels`` copy ``input_ids``. With ``train_on_inputs=False`` (our default) every token that starts
inside the prompt gets label -100, found from the tokenizer's character offsets, so the boundary is exact
(the reference re-tokenised the prompt on its own, which can shift it by a token). ``train_on_inputs=True``
is the reference's default: the loss covers the prompt too.

Batches are padded on the right (:class:`RightPaddingCollator`) with the tokenizer's pad token, attention
mask 0 and label -100, so positions stay right for absolute-position models.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from llm_adapters.errors import LLMAdaptersError
from llm_adapters.fileio import read_utf8
from llm_adapters.template import Template

REQUIRED_FIELDS = ("instruction", "output")
OPTIONAL_FIELDS = ("input", "answer")
IGNORE_INDEX = -100


class DataError(LLMAdaptersError, ValueError):
    """Training data could not be read or a record is malformed."""


# ---- loading --------------------------------------------------------------------------------------
def _check_record(rec: Any, index: int, where: str) -> dict[str, Any]:
    if not isinstance(rec, dict):
        raise DataError(
            f"{where}: record {index} is a {type(rec).__name__}, expected an object with fields "
            "'instruction', 'input', 'output'"
        )
    for key in REQUIRED_FIELDS:
        if key not in rec or rec[key] is None:
            raise DataError(f"{where}: record {index} has no {key!r} field (it has: {', '.join(map(str, rec))})")
        if not isinstance(rec[key], str):
            raise DataError(f"{where}: record {index}: {key!r} must be a string, got {type(rec[key]).__name__}")
    inp = rec.get("input")
    if inp is not None and not isinstance(inp, str):
        raise DataError(f"{where}: record {index}: 'input' must be a string, got {type(inp).__name__}")
    out = {"instruction": rec["instruction"], "input": inp or "", "output": rec["output"]}
    if rec.get("answer") is not None:
        answer = rec["answer"]
        if not isinstance(answer, (str, int, float)):
            raise DataError(
                f"{where}: record {index}: 'answer' must be a string or number, got {type(answer).__name__}"
            )
        out["answer"] = str(answer)
    return out


def _read_text(path: Path) -> str:
    """The file decoded as UTF-8 (a leading byte-order mark dropped); other bytes are a :class:`DataError`
    naming the byte, its offset and its line."""
    try:
        return read_utf8(path)
    except UnicodeError as exc:
        raise DataError(f"{path}: not UTF-8 text: {exc}") from None


def _read_json(path: Path) -> list[dict[str, Any]]:
    text = _read_text(path)
    stripped = text.lstrip()
    if path.suffix.lower() == ".jsonl" or not stripped.startswith("["):
        records = []
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}: record {len(records)} (line {lineno}) is not valid JSON: {exc.msg}") from None
            records.append(_check_record(rec, len(records), str(path)))
        return records
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}") from None
    return [_check_record(rec, i, str(path)) for i, rec in enumerate(data)]


def _validate_dataset(ds: Any, where: str) -> Any:
    missing = [k for k in REQUIRED_FIELDS if k not in ds.column_names]
    if missing:
        raise DataError(f"{where}: no {missing[0]!r} column (columns: {', '.join(ds.column_names)})")
    columns = {k: ds[k] for k in (*REQUIRED_FIELDS, *OPTIONAL_FIELDS) if k in ds.column_names}
    records = [_check_record({k: v[i] for k, v in columns.items()}, i, where) for i in range(len(ds))]
    return _to_dataset(_drop_empty([(where, records)]))


def _is_empty(rec: dict[str, Any]) -> bool:
    return not rec["instruction"].strip() and not rec["output"].strip()


def _drop_empty(sources: Sequence[tuple[str, list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    """The records of every source but those whose ``instruction`` and ``output`` are both empty (or blank),
    with one warning giving their count and where they are."""
    kept: list[dict[str, Any]] = []
    where: list[str] = []
    total = skipped = 0
    for name, records in sources:
        empty = [i for i, rec in enumerate(records) if _is_empty(rec)]
        kept.extend(rec for rec in records if not _is_empty(rec))
        total += len(records)
        skipped += len(empty)
        if empty:
            shown = ", ".join(map(str, empty[:5])) + (", ..." if len(empty) > 5 else "")
            where.append(f"{name} (record{'s' if len(empty) > 1 else ''} {shown})")
    if skipped:
        warnings.warn(
            f"{skipped} of {total} training record(s) have an empty 'instruction' and 'output' and are skipped: "
            f"{'; '.join(where)}",
            stacklevel=2,
        )
    return kept


def _to_dataset(records: list[dict[str, Any]]) -> Any:
    from datasets import Dataset

    has_answer = any("answer" in r for r in records)
    if has_answer:
        records = [dict(r, answer=r.get("answer", "")) for r in records]
    if not records:
        return Dataset.from_dict({"instruction": [], "input": [], "output": []})
    return Dataset.from_list(records)


def load_records(source: str | Path, *, split: str = "train", limit: int | None = None) -> Any:
    """Load and validate instruction records into a ``datasets.Dataset`` with the columns ``instruction``,
    ``input``, ``output`` (and ``answer`` when any record has one)."""
    import datasets

    path = Path(source).expanduser()
    where = str(path)
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in (".json", ".jsonl"):
            records = _drop_empty([(where, _read_json(path))])
            return _to_dataset(records[:limit] if limit is not None else records)
        if suffix in (".parquet", ".arrow"):
            builder = "parquet" if suffix == ".parquet" else "arrow"
            ds = datasets.load_dataset(builder, data_files=str(path), split="train")
        else:
            raise DataError(f"{path}: unsupported file type {suffix!r}; use .json, .jsonl, .parquet or .arrow")
    elif path.is_dir():
        if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
            loaded = datasets.load_from_disk(str(path))
            if isinstance(loaded, datasets.DatasetDict):
                if split not in loaded:
                    raise DataError(f"{path}: no split {split!r} (splits: {', '.join(loaded)})")
                loaded = loaded[split]
            ds = loaded
        else:
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".json", ".jsonl"))
            if files:
                records = _drop_empty([(str(f), _read_json(f)) for f in files])
                return _to_dataset(records[:limit] if limit is not None else records)
            try:
                ds = datasets.load_dataset(str(path), split=split)
            except Exception as exc:  # datasets raises several types for an unreadable directory
                raise DataError(f"{path}: no JSON, JSONL, Parquet or Arrow data found: {exc}") from None
    elif str(source).startswith((".", "/", "~")) or path.suffix.lower() in (".json", ".jsonl", ".parquet"):
        raise DataError(f"{path}: no such file or directory")
    else:
        try:
            ds = datasets.load_dataset(str(source), split=split)
        except Exception as exc:
            raise DataError(
                f"could not load hub dataset {str(source)!r} (split {split!r}): {type(exc).__name__}: {exc}. "
                "Is the name right and the hub reachable? A local file must exist."
            ) from None
        where = f"hub dataset {source}"
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    return _validate_dataset(ds, where)


def split_records(ds: Any, val_size: float, *, seed: int = 42) -> tuple[Any, Any | None]:
    """``(train, validation)``: ``val_size`` >= 1 is a number of records, 0 < ``val_size`` < 1 a fraction,
    0 no validation set. The split is shuffled with ``seed`` (the same split every run)."""
    if val_size < 0:
        raise DataError(f"the validation size must be >= 0, got {val_size}")
    if val_size == 0:
        return ds, None
    if val_size >= 1:
        if val_size != int(val_size):
            raise DataError(f"a validation size >= 1 is a number of records and must be whole, got {val_size}")
        if int(val_size) >= len(ds):
            raise DataError(f"the validation size {int(val_size)} leaves no training records (of {len(ds)})")
        test_size: float | int = int(val_size)
    else:
        test_size = float(val_size)
    parts = ds.train_test_split(test_size=test_size, shuffle=True, seed=seed)
    return parts["train"], parts["test"]


# ---- tokenisation ---------------------------------------------------------------------------------
def tokenize_record(
    tokenizer: Any,
    template: Template,
    record: dict[str, Any],
    *,
    cutoff_len: int,
    train_on_inputs: bool = False,
    add_eos: bool = True,
) -> dict[str, list[int]]:
    """``input_ids``, ``attention_mask`` and ``labels`` of one record (see the module docstring)."""
    prompt = template.prompt(record["instruction"], record.get("input") or "")
    full = prompt + record["output"]
    use_offsets = not train_on_inputs and getattr(tokenizer, "is_fast", False)
    enc = tokenizer(
        full,
        truncation=True,
        max_length=cutoff_len,
        padding=False,
        return_offsets_mapping=use_offsets,
    )
    ids = list(enc["input_ids"])
    eos = tokenizer.eos_token_id
    if add_eos and eos is not None and (not ids or ids[-1] != eos) and len(ids) < cutoff_len:
        ids.append(eos)
    labels = list(ids)
    if not train_on_inputs:
        if use_offsets:
            offsets = list(enc["offset_mapping"])
            n_prompt = len(prompt)
            for i, (start, end) in enumerate(offsets):
                # special tokens (BOS) have the empty span (0, 0) and belong to the prompt
                if start < n_prompt or (start == end == 0):
                    labels[i] = IGNORE_INDEX
        else:  # slow tokenizers have no offsets: tokenise the prompt alone, as the reference did
            n = len(tokenizer(prompt, truncation=True, max_length=cutoff_len)["input_ids"])
            labels[:n] = [IGNORE_INDEX] * min(n, len(labels))
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels}


def tokenize_dataset(
    ds: Any,
    tokenizer: Any,
    template: Template,
    *,
    cutoff_len: int,
    train_on_inputs: bool = False,
    add_eos: bool = True,
) -> Any:
    """Map :func:`tokenize_record` over ``ds``, keeping only the model's columns. Records left with no
    trained token (a prompt that fills ``cutoff_len`` when the prompt is masked) are dropped with a warning:
    they would only dilute the batch's loss."""

    def fn(rec: dict[str, Any]) -> dict[str, list[int]]:
        return tokenize_record(
            tokenizer, template, rec, cutoff_len=cutoff_len, train_on_inputs=train_on_inputs, add_eos=add_eos
        )

    out = ds.map(fn, remove_columns=ds.column_names, desc="tokenizing", keep_in_memory=True)
    kept = out.filter(lambda r: any(label != IGNORE_INDEX for label in r["labels"]), keep_in_memory=True)
    if len(kept) < len(out):
        warnings.warn(
            f"{len(out) - len(kept)} of {len(out)} records have no response token left within cutoff_len="
            f"{cutoff_len} and are skipped; raise cutoff_len to train on them",
            stacklevel=2,
        )
    return kept


@dataclass
class RightPaddingCollator:
    """Pads ``input_ids`` with ``pad_token_id``, ``attention_mask`` with 0 and ``labels`` with -100 on the
    right, to the longest sequence in the batch rounded up to ``pad_to_multiple_of``."""

    pad_token_id: int
    pad_to_multiple_of: int | None = 8

    def __call__(self, features: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        longest = max(len(f["input_ids"]) for f in features)
        if self.pad_to_multiple_of:
            m = self.pad_to_multiple_of
            longest = (longest + m - 1) // m * m
        batch: dict[str, list[list[int]]] = {"input_ids": [], "attention_mask": [], "labels": []}
        for f in features:
            n = len(f["input_ids"])
            pad = longest - n
            batch["input_ids"].append(list(f["input_ids"]) + [self.pad_token_id] * pad)
            batch["attention_mask"].append(list(f.get("attention_mask", [1] * n)) + [0] * pad)
            batch["labels"].append(list(f.get("labels", f["input_ids"])) + [IGNORE_INDEX] * pad)
        return {k: torch.tensor(v, dtype=torch.long) for k, v in batch.items()}

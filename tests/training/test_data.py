"""Data loading, validation, splitting, tokenisation with masking, and right padding."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from llm_adapters.template import get_template
from llm_adapters_train.data import (
    DataError,
    RightPaddingCollator,
    load_records,
    split_records,
    tokenize_dataset,
    tokenize_record,
)
from tests.shared_data import shared_or_skip

from .helpers import char_tokenizer

RECS = [
    {"instruction": "Add 2 and 3.", "input": "", "output": "5", "answer": "5"},
    {"instruction": "Sum", "input": "1, 2", "output": "3"},
    {"instruction": "Name a colour.", "output": "red"},
]


def test_json_and_jsonl_give_the_same_records(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(RECS))
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in RECS) + "\n\n")
    for name in ("a.json", "a.jsonl"):
        ds = load_records(tmp_path / name)
        assert ds.column_names == ["instruction", "input", "output", "answer"]
        assert ds["input"] == ["", "1, 2", ""]  # a missing input is empty
        assert ds["answer"] == ["5", "", ""]
        assert ds["output"] == ["5", "3", "red"]
    assert len(load_records(tmp_path / "a.json", limit=2)) == 2


def test_reference_training_file_loads() -> None:
    path = shared_or_skip() / "ft-training_set" / "math_data.json"
    ds = load_records(path)
    assert len(ds) == 3260
    assert ds[0]["output"].startswith("\nA:")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            [{"instruction": "a", "input": ""}],
            r"a\.json: record 0 has no 'output' field \(it has: instruction, input\)",
        ),
        ([{"instruction": "a", "output": "b"}, {"output": "c"}], r"a\.json: record 1 has no 'instruction' field"),
        ([{"instruction": "a", "output": 5}], r"a\.json: record 0: 'output' must be a string, got int"),
        ([{"instruction": "a", "output": "b", "input": ["x"]}], r"record 0: 'input' must be a string, got list"),
        ([{"instruction": "a", "output": "b"}, "text"], r"a\.json: record 1 is a str, expected an object"),
    ],
)
def test_malformed_records_name_file_and_index(tmp_path: Path, content, message) -> None:
    (tmp_path / "a.json").write_text(json.dumps(content))
    with pytest.raises(DataError, match=message):
        load_records(tmp_path / "a.json")


def test_jsonl_syntax_error_names_record_and_line(tmp_path: Path) -> None:
    (tmp_path / "b.jsonl").write_text('{"instruction": "a", "output": "b"}\n\n{"instruction": "a", "output": \n')
    with pytest.raises(DataError, match=r"b\.jsonl: record 1 \(line 3\) is not valid JSON"):
        load_records(tmp_path / "b.jsonl")


def test_missing_file_and_unsupported_type(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope\.json: no such file or directory"):
        load_records(tmp_path / "nope.json")
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(DataError, match=r"unsupported file type '\.csv'"):
        load_records(tmp_path / "x.csv")


def test_parquet_and_saved_dataset_directory(tmp_path: Path) -> None:
    from datasets import Dataset, DatasetDict

    ds = Dataset.from_list([dict(r, input=r.get("input", "")) for r in RECS[:2]])
    ds.to_parquet(str(tmp_path / "d.parquet"))
    assert load_records(tmp_path / "d.parquet")["output"] == ["5", "3"]
    DatasetDict({"train": ds}).save_to_disk(str(tmp_path / "saved"))
    assert load_records(tmp_path / "saved")["instruction"] == ["Add 2 and 3.", "Sum"]
    bad = Dataset.from_list([{"instruction": "a", "output": None}])
    bad.save_to_disk(str(tmp_path / "bad"))
    with pytest.raises(DataError, match=r"bad: record 0 has no 'output' field"):
        load_records(tmp_path / "bad")
    Dataset.from_list([{"question": "a"}]).save_to_disk(str(tmp_path / "cols"))
    with pytest.raises(DataError, match=r"cols: no 'instruction' column \(columns: question\)"):
        load_records(tmp_path / "cols")


def test_split_by_count_and_fraction_is_seeded(tmp_path: Path) -> None:
    from datasets import Dataset

    ds = Dataset.from_list([{"instruction": str(i), "input": "", "output": str(i)} for i in range(50)])
    train, val = split_records(ds, 10, seed=1)
    assert (len(train), len(val)) == (40, 10)
    assert sorted(list(train["instruction"]) + list(val["instruction"]), key=int) == [str(i) for i in range(50)]
    assert list(split_records(ds, 10, seed=1)[1]["instruction"]) == list(val["instruction"])
    assert list(split_records(ds, 10, seed=2)[1]["instruction"]) != list(val["instruction"])
    train, val = split_records(ds, 0.2, seed=1)
    assert (len(train), len(val)) == (40, 10)
    assert split_records(ds, 0)[1] is None
    with pytest.raises(DataError, match="leaves no training records"):
        split_records(ds, 50)


def test_masking_covers_exactly_the_prompt_and_eos_is_appended() -> None:
    tok = char_tokenizer()  # one token per character: the prompt's length in characters is its token count
    template = get_template("alpaca-reference")
    rec = {"instruction": "Add 2 and 3.", "input": "", "output": "\nA: 5."}
    prompt = template.prompt(rec["instruction"])
    out = tokenize_record(tok, template, rec, cutoff_len=1000)
    n = len(prompt)
    assert out["input_ids"] == tok(prompt + rec["output"]).input_ids + [tok.eos_token_id]
    assert out["labels"][:n] == [-100] * n
    assert out["labels"][n:] == out["input_ids"][n:]
    assert tok.decode(out["labels"][n:-1]) == "\nA: 5."
    assert out["attention_mask"] == [1] * len(out["input_ids"])
    # the reference's default: the loss covers the prompt too
    ref = tokenize_record(tok, template, rec, cutoff_len=1000, train_on_inputs=True)
    assert ref["labels"] == ref["input_ids"] == out["input_ids"]


def test_truncated_examples_get_no_eos_like_the_reference() -> None:
    tok = char_tokenizer()
    template = get_template("alpaca")
    rec = {"instruction": "Q", "input": "", "output": "x" * 50}
    full_len = len(template.render("Q", "", "x" * 50))
    cut = tokenize_record(tok, template, rec, cutoff_len=full_len - 10)
    assert len(cut["input_ids"]) == full_len - 10 and tok.eos_token_id not in cut["input_ids"]
    exact = tokenize_record(tok, template, rec, cutoff_len=full_len)  # fits, but no room left for EOS
    assert len(exact["input_ids"]) == full_len and exact["input_ids"][-1] != tok.eos_token_id
    roomy = tokenize_record(tok, template, rec, cutoff_len=full_len + 1)
    assert roomy["input_ids"][-1] == tok.eos_token_id
    no_eos = tokenize_record(tok, template, rec, cutoff_len=full_len + 1, add_eos=False)
    assert no_eos["input_ids"][-1] != tok.eos_token_id


def test_bos_is_masked_with_the_prompt() -> None:
    from tokenizers import processors

    tok = char_tokenizer()
    tok._tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", tok.bos_token_id)]
    )
    template = get_template("alpaca")
    rec = {"instruction": "Q", "input": "", "output": "ok"}
    out = tokenize_record(tok, template, rec, cutoff_len=1000)
    assert out["input_ids"][0] == tok.bos_token_id
    n = 1 + len(template.prompt("Q"))
    assert out["labels"][:n] == [-100] * n and tok.decode(out["labels"][n:-1]) == "ok"


def test_tokenize_dataset_keeps_model_columns(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(RECS))
    ds = tokenize_dataset(load_records(tmp_path / "a.json"), char_tokenizer(), get_template("alpaca"), cutoff_len=1000)
    assert ds.column_names == ["input_ids", "attention_mask", "labels"]
    assert len(ds) == 3


def test_records_without_a_trained_token_are_skipped_with_a_warning(tmp_path: Path) -> None:
    long_prompt = {"instruction": "x" * 600, "input": "", "output": "y"}
    (tmp_path / "a.json").write_text(json.dumps([*RECS, long_prompt]))
    ds_all = load_records(tmp_path / "a.json")
    with pytest.warns(UserWarning, match="1 of 4 records have no response token left within cutoff_len=500"):
        ds = tokenize_dataset(ds_all, char_tokenizer(), get_template("alpaca"), cutoff_len=500)
    assert len(ds) == 3 and all(any(label != -100 for label in r["labels"]) for r in ds)
    # training on the prompt too keeps it: its prompt tokens carry loss
    assert (
        len(tokenize_dataset(ds_all, char_tokenizer(), get_template("alpaca"), cutoff_len=500, train_on_inputs=True))
        == 4
    )


def test_collator_pads_on_the_right_with_the_pad_token() -> None:
    collate = RightPaddingCollator(pad_token_id=7, pad_to_multiple_of=4)
    batch = collate(
        [
            {"input_ids": [1, 2, 3], "attention_mask": [1, 1, 1], "labels": [-100, 2, 3]},
            {"input_ids": [4, 5, 6, 8, 9], "attention_mask": [1] * 5, "labels": [4, 5, 6, 8, 9]},
        ]
    )
    assert batch["input_ids"].tolist() == [[1, 2, 3, 7, 7, 7, 7, 7], [4, 5, 6, 8, 9, 7, 7, 7]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 0, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 2, 3] + [-100] * 5, [4, 5, 6, 8, 9, -100, -100, -100]]


def test_hub_dataset_without_a_hub_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DataError, match=r"could not load hub dataset 'nobody/no-such-dataset' \(split 'train'\)"):
        load_records("nobody/no-such-dataset")


# ---- bytes that are not UTF-8, and empty records ------------------------------------------------------------
@pytest.mark.parametrize("name", ["bad.json", "bad.jsonl"])
def test_bytes_that_are_not_utf8_name_the_file_offset_and_line(tmp_path: Path, name: str) -> None:
    good = json.dumps(RECS[0]).encode()
    content = (b"[" + good + b",\n" + b'{"instruction": "caf\xe9", "output": "x"}]') if name.endswith(".json") else None
    if content is None:
        content = good + b"\n" + b'{"instruction": "caf\xe9", "output": "x"}\n'
    path = tmp_path / name
    path.write_bytes(content)
    offset = content.index(b"\xe9")
    with pytest.raises(DataError) as err:
        load_records(path)
    assert str(err.value) == (
        f"{path}: not UTF-8 text: byte 0xe9 at offset {offset} (line 2) cannot be decoded (invalid continuation "
        "byte); save the file as UTF-8"
    )


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(RECS).encode())
    (tmp_path / "a.jsonl").write_bytes(b"\xef\xbb\xbf" + "\n".join(json.dumps(r) for r in RECS).encode())
    assert (
        load_records(tmp_path / "a.json")["output"] == load_records(tmp_path / "a.jsonl")["output"] == ["5", "3", "red"]
    )


EMPTY = {"instruction": "", "input": "something", "output": ""}
BLANK = {"instruction": "  ", "output": "\n"}


def _caught(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn(*args, **kwargs)
    return result, [str(w.message) for w in caught]


@pytest.mark.parametrize("name", ["a.json", "a.jsonl"])
def test_empty_records_are_skipped_with_one_warning(tmp_path: Path, name: str) -> None:
    recs = [EMPTY, RECS[0], BLANK, RECS[1], {"instruction": "", "output": "only an output"}, EMPTY]
    path = tmp_path / name
    path.write_text(json.dumps(recs) if name.endswith(".json") else "\n".join(json.dumps(r) for r in recs))
    ds, messages = _caught(load_records, path)
    assert messages == [
        f"3 of 6 training record(s) have an empty 'instruction' and 'output' and are skipped: {path} (records 0, 2, 5)"
    ]
    assert ds["output"] == ["5", "3", "only an output"]
    assert len(_caught(load_records, path, limit=2)[0]) == 2  # the limit counts the records kept


def test_empty_records_in_a_directory_and_a_saved_dataset(tmp_path: Path) -> None:
    from datasets import Dataset

    folder = tmp_path / "parts"
    folder.mkdir()
    (folder / "a.json").write_text(json.dumps([RECS[0], EMPTY]))
    (folder / "b.jsonl").write_text(json.dumps(EMPTY) + "\n" + json.dumps(RECS[2]) + "\n")
    ds, messages = _caught(load_records, folder)
    assert messages == [
        "2 of 4 training record(s) have an empty 'instruction' and 'output' and are skipped: "
        f"{folder / 'a.json'} (record 1); {folder / 'b.jsonl'} (record 0)"
    ]
    assert ds["output"] == ["5", "red"]
    Dataset.from_list([dict(EMPTY), dict(RECS[1])]).save_to_disk(str(tmp_path / "saved"))
    ds, messages = _caught(load_records, tmp_path / "saved")
    assert messages == [
        "1 of 2 training record(s) have an empty 'instruction' and 'output' and are skipped: "
        f"{tmp_path / 'saved'} (record 0)"
    ]
    assert ds["output"] == ["3"]


def test_only_empty_records_is_the_no_training_examples_error(tmp_path: Path, probe) -> None:
    from llm_adapters.testing import tiny_model_from_config
    from llm_adapters_train.errors import TrainingError
    from llm_adapters_train.run_config import TrainConfig
    from llm_adapters_train.training import train
    from tests.core import probe_plugin

    path = tmp_path / "empty.json"
    path.write_text(json.dumps([EMPTY, BLANK]))
    config = TrainConfig(data=str(path), output=str(tmp_path / "out"), adapter="probe", max_steps=1)
    with warnings.catch_warnings(record=True) as caught, pytest.raises(TrainingError) as err:
        warnings.simplefilter("always")
        train(config, model=tiny_model_from_config(probe_plugin.TINY_LLAMA, seed=0), tokenizer=char_tokenizer())
    assert str(err.value).startswith(f"no training examples: {path} has 0 training record(s)")
    skipped = [str(w.message) for w in caught if "are skipped" in str(w.message)]
    assert skipped == [
        f"2 of 2 training record(s) have an empty 'instruction' and 'output' and are skipped: {path} (records 0, 1)"
    ]

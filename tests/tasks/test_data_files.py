"""Data files: where a task looks, what a missing or malformed file says, and the published sets' sizes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from llm_adapters import get_task
from llm_adapters.task import TaskDataError
from llm_adapters_tasks.layout import ENV_DATA, resolve_data_dir

from .conftest import ASSETS, shared_or_skip

# Record counts of the published test files (seed-reference section 4.1 and the data README).
SHARED_COUNTS = {
    "addsub": 395,
    "multiarith": 600,
    "singleeq": 508,
    "gsm8k": 1319,
    "aqua": 254,
    "mathqa": 2985,
    "boolq": 3270,
    "piqa": 1838,
    "siqa": 1954,
    "arc-easy": 2376,
    "arc-challenge": 1172,
}


@pytest.mark.parametrize(("name", "count"), sorted(SHARED_COUNTS.items()))
def test_published_sets_load_with_their_sizes(name: str, count: int) -> None:
    examples = get_task(name).load(shared_or_skip())
    assert len(examples) == count
    assert all(ex.instruction and ex.answer for ex in examples)
    assert [ex.index for ex in examples[:3]] == [0, 1, 2]


@pytest.mark.parametrize(
    ("name", "count"), [("svamp", 3), ("mawps", 3), ("hellaswag", 2), ("winogrande", 2), ("openbookqa", 2)]
)
def test_sets_brought_by_the_user_load_from_the_same_layout(name: str, count: int) -> None:
    assert len(get_task(name).load(ASSETS)) == count


def test_missing_file_names_the_path_and_what_to_put_there(tmp_path: Path) -> None:
    task = get_task("svamp")
    expected = tmp_path / "dataset" / "SVAMP" / "test.json"
    with pytest.raises(TaskDataError) as err:
        task.load(tmp_path)
    message = str(err.value)
    assert message.startswith(f"task 'svamp': data file not found: {expected}. Put the SVAMP test set there: ")
    assert '{"instruction", "input", "output", "answer"}' in message
    assert f"--data-dir / {ENV_DATA}" in message


def test_data_dir_defaults_to_the_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_DATA, str(ASSETS))
    assert len(get_task("winogrande").load()) == 2
    monkeypatch.delenv(ENV_DATA)
    with pytest.raises(TaskDataError, match=rf"no data directory: pass --data-dir DIR .* or set {ENV_DATA}=DIR"):
        resolve_data_dir(None)


def test_folder_names_match_case_insensitively(tmp_path: Path) -> None:
    shutil.copytree(ASSETS / "dataset" / "mawps", tmp_path / "dataset" / "MAWPS")
    assert get_task("mawps").data_file(tmp_path) == tmp_path / "dataset" / "MAWPS" / "test.json"
    assert len(get_task("mawps").load(tmp_path)) == 3


def test_limit_takes_the_first_examples() -> None:
    examples = get_task("svamp").load(ASSETS, limit=2)
    assert [ex.answer for ex in examples] == ["5.0", "875.0"]


def _write(root: Path, folder: str, payload: object) -> Path:
    path = root / "dataset" / folder / "test.json"
    path.parent.mkdir(parents=True)
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload))
    return path


def test_malformed_files_say_where(tmp_path: Path) -> None:
    path = _write(tmp_path, "gsm8k", [{"instruction": "1+1?", "answer": "2"}, {"instruction": "2+2?"}])
    with pytest.raises(
        TaskDataError,
        match=rf"task 'gsm8k': {path}, record 1: missing field 'answer' \(has: "
        r"instruction\)",
    ):
        get_task("gsm8k").load(tmp_path)
    path = _write(tmp_path, "boolq", {"instruction": "x"})
    with pytest.raises(TaskDataError, match=rf"task 'boolq': {path} must hold a JSON list of records"):
        get_task("boolq").load(tmp_path)
    path = _write(tmp_path, "piqa", "[{")
    with pytest.raises(TaskDataError, match=rf"task 'piqa': {path} is not valid JSON"):
        get_task("piqa").load(tmp_path)


def test_numeric_answers_and_extra_fields_are_kept(tmp_path: Path) -> None:
    _write(tmp_path, "gsm8k", [{"instruction": "1+1?", "input": None, "answer": 2, "id": 7}])
    (ex,) = get_task("gsm8k").load(tmp_path)
    assert (ex.answer, ex.input, ex.extra) == ("2", "", {"id": 7})


def test_an_empty_test_set_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "SVAMP", [])
    with pytest.raises(TaskDataError) as err:
        get_task("svamp").load(tmp_path)
    assert str(err.value) == (
        f"task 'svamp': {path} holds no records (an empty list); put the SVAMP test set there: a JSON list of "
        '{"instruction", "input", "output", "answer"} records'
    )
    path = ASSETS / "dataset" / "mawps" / "test.json"
    with pytest.raises(TaskDataError) as err:
        get_task("mawps").load(ASSETS, limit=0)
    assert str(err.value) == f"task 'mawps': limit=0 leaves no examples of {path}; give a limit of at least 1"


@pytest.mark.parametrize(
    ("name", "folder", "instruction", "good", "bad", "allowed"),
    [
        ("aqua", "AQuA", "1+1? Answer Choices: (A) 1 (B) 2 (C) 3 (D) 4 (E) 5", "b", "F", "A, B, C, D, E"),
        ("mathqa", "mathqa", "1+1? The options: A ) 1 , B ) 2", "B", "answer2", "A, B, C, D, E"),
        (
            "arc-easy",
            "ARC-Easy",
            "Q?\n\nAnswer1: a Answer2: b Answer3: c Answer4: d Answer5: e\n\nAnswer format: "
            "answer1/answer2/answer3/answer4/answer5",
            "answer5",
            "answer7",
            "answer1, answer2, answer3, answer4, answer5",
        ),
        # no "Answer format:" line: the task's own labels
        ("siqa", "social_i_qa", "Who?", "answer3", "answer4", "answer1, answer2, answer3"),
        ("boolq", "boolq", "Is it?\n\nAnswer format: true/false", "True", "yes", "true, false"),
    ],
)
def test_answers_outside_the_label_set_are_errors(
    tmp_path: Path, name: str, folder: str, instruction: str, good: str, bad: str, allowed: str
) -> None:
    path = _write(tmp_path, folder, [{"instruction": instruction, "answer": a} for a in (good, good, bad)])
    with pytest.raises(TaskDataError) as err:
        get_task(name).load(tmp_path)
    assert str(err.value) == (
        f"task {name!r}: {path}, record 2: answer {bad!r} is not one of the allowed labels ({allowed}); "
        "correct the record's 'answer' to one of them"
    )
    # the labels match as robust scoring matches them: case and surrounding space aside
    assert [ex.answer for ex in get_task(name).load(tmp_path, limit=2)] == [good, good]


def test_open_answers_are_not_checked_against_labels(tmp_path: Path) -> None:
    _write(tmp_path, "gsm8k", [{"instruction": "1+1?", "answer": "F"}])
    assert get_task("gsm8k").load(tmp_path)[0].answer == "F"


def test_bytes_that_are_not_utf8_name_the_file_offset_and_line(tmp_path: Path) -> None:
    path = tmp_path / "dataset" / "piqa" / "test.json"
    path.parent.mkdir(parents=True)
    content = b'[\n  {"instruction": "ok", "answer": "solution1"},\n  {"instruction": "\xff"}\n]'
    path.write_bytes(content)
    offset = content.index(b"\xff")
    with pytest.raises(TaskDataError) as err:
        get_task("piqa").load(tmp_path)
    assert str(err.value) == (
        f"task 'piqa': {path} is not UTF-8 text: byte 0xff at offset {offset} (line 3) cannot be "
        "decoded (invalid start byte); save the file as UTF-8"
    )


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "dataset" / "winogrande" / "test.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\xef\xbb\xbf" + (ASSETS / "dataset" / "winogrande" / "test.json").read_bytes())
    assert get_task("winogrande").load(tmp_path) == get_task("winogrande").load(ASSETS)

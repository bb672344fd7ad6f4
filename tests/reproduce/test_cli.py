"""``llm-adapters reproduce`` through the real command line: usage errors, one-line errors for bad input, the
dry run, and a small grid on a tiny model saved to disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from llm_adapters.cli import main
from tests.evaluation.helpers import save_tiny

from .conftest import grid_dict, write_layout


def _main(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", *args])
        raise SystemExit(0)
    out = capsys.readouterr()
    return exc.value.code or 0, out.out, out.err


def _grid_file(tmp_path: Path, **overrides) -> Path:
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(grid_dict(**overrides)))
    return path


def test_a_preset_or_a_grid_is_required(capsys) -> None:
    code, _, err = _main([], capsys)
    assert code == 2 and "give --preset NAME (commonsense, math, quick) or --grid FILE" in err
    code, _, err = _main(["--preset", "quick", "--grid", "g.yaml"], capsys)
    assert code == 2 and "give --preset or --grid, not both" in err
    code, _, err = _main(["--preset", "quik"], capsys)
    assert (code, err) == (
        1,
        "Error: unknown preset 'quik'; the presets are: commonsense, math, quick (or give --grid FILE)\n",
    )


def test_list_presets(capsys) -> None:
    code, out, _ = _main(["--list-presets"], capsys)
    assert code == 0
    assert [line.split(":")[0] for line in out.splitlines()] == ["commonsense", "math", "quick"]


def test_bad_input_is_one_line_before_anything_runs(tmp_path: Path, capsys) -> None:
    data = write_layout(tmp_path / "data")
    grid = _grid_file(tmp_path, tasks=["nosuchtask"])
    code, out, err = _main(["--grid", str(grid), "--data-dir", str(data), "--output", str(tmp_path / "o")], capsys)
    assert code == 1 and out == ""
    assert (
        err.startswith(f"Error: {grid}: tasks: unknown task 'nosuchtask'; installed tasks: ") and err.count("\n") == 1
    )
    assert not (tmp_path / "o").exists()
    code, _, err = _main(["--grid", str(tmp_path / "none.yaml")], capsys)
    assert (code, err) == (1, f"Error: config file {str(tmp_path / 'none.yaml')!r} does not exist\n")


def test_dry_run_shows_the_plan_and_writes_nothing(tmp_path: Path, capsys) -> None:
    data = write_layout(tmp_path / "data")
    grid = _grid_file(tmp_path)
    args = ["--grid", str(grid), "--data-dir", str(data), "--output", str(tmp_path / "o"), "--dry-run"]
    code, out, _ = _main([*args, "--methods", "series", "--task", "addsub,singleeq"], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"grid tiny ({grid}); output {tmp_path / 'o'}"
    assert "  1 of the 25 training records repeat an evaluated problem: left out" in lines
    assert "tasks: AddSub (4), SingleEq (2)" in lines
    assert (
        lines[-1] == "  series: series (bottleneck_size=4, variant=adapterp); 2 steps of 2, lr 0.01; paper row Series"
    )
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_a_small_grid_through_the_command_line(tmp_path: Path, capsys) -> None:
    data = write_layout(tmp_path / "data")
    model = save_tiny(tmp_path / "tiny-llama")
    grid = _grid_file(tmp_path, model=str(model), methods=grid_dict()["methods"][:1])
    out = tmp_path / "o"
    code, stdout, stderr = _main(["--grid", str(grid), "--data-dir", str(data), "--output", str(out)], capsys)
    assert code == 0, stderr
    results = json.loads((out / "results.json").read_text())
    assert [(c["method"], c["task"]) for c in results["cells"]] == [("zero-shot", "addsub"), ("lora", "addsub")]
    wrote = f"wrote {out / 'results.json'}, {out / 'results.md'}, {out / 'results.png'} and one folder per method"
    assert stdout == (out / "results.md").read_text() + "\n" + wrote + "\n"  # the table, nothing else
    assert "[3/3] lora: evaluating AddSub (4 examples)" in stderr
    # a second run into the same folder: refused without --resume, nothing to do with it
    code, _, err = _main(["--grid", str(grid), "--data-dir", str(data), "--output", str(out)], capsys)
    assert code == 1 and "pass --resume to continue it" in err
    code, _, err = _main(["--grid", str(grid), "--data-dir", str(data), "--output", str(out), "--resume"], capsys)
    assert code == 0 and f"resuming: 3 of 3 jobs already finished in {out}" in err
    assert json.loads((out / "results.json").read_text())["cells"] == results["cells"]

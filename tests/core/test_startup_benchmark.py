"""The start-up benchmark runs and reports each command against bare Python."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "startup.py"


def test_one_round_reports_every_command_against_python(tmp_path: Path, capsys) -> None:
    spec = importlib.util.spec_from_file_location("startup_benchmark", SCRIPT)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--rounds", "1", "--json", str(tmp_path / "s.json")]) == 0
    rows = {r["command"]: r for r in json.loads((tmp_path / "s.json").read_text())["results"]}
    assert list(rows) == ["python -c pass", "help", "plugins"]
    assert rows["python -c pass"]["over_python"] == 0.0
    assert all(r["best"] >= rows["python -c pass"]["best"] for r in rows.values())
    assert rows["help"]["target"] == 0.5 and rows["plugins"]["target"] == 2.0
    printed = capsys.readouterr().out
    assert "help" in printed and "plugins" in printed


def test_the_load_is_timed_over_the_same_imports_in_a_bare_process() -> None:
    spec = importlib.util.spec_from_file_location("startup_benchmark", SCRIPT)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert list(bench.commands()) == ["python -c pass", "help", "plugins"]  # no model unless asked
    cmds = bench.commands("smollm2-135m")
    imports, load = cmds["imports"][-1], cmds["load"][-1]
    assert "llm_adapters" not in imports and load.startswith(imports + "; ")
    assert load.endswith("la.load_model('smollm2-135m')")
    assert bench.TARGETS["load"] == 3.0

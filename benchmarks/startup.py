"""Start-up cost of the command line: ``llm-adapters --help`` and ``llm-adapters plugins`` against a bare
``python -c pass`` measured on the same machine in the same run; with ``--load``, loading a model from the cache
against importing the libraries that any load of it needs.

    python benchmarks/startup.py                 # 5 rounds, best and median of each
    python benchmarks/startup.py --rounds 9 --json runs/startup.json
    python benchmarks/startup.py --load          # also la.load_model("smollm2-135m") from its cache

Every round runs each command once, in a rotated order, so that a burst of load hits all alike. Targets: ``--help``
under 0.5 s and ``plugins`` under 2 s on a quiet 2-core machine; loading the model, over importing torch,
transformers and the model's modelling module in a bare process, under 3 s. ``--check`` exits 1 when a best time
misses its target.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGETS = {"help": 0.5, "plugins": 2.0, "load": 3.0}
#: what a process that loads a LLaMA-style model from the cache cannot avoid importing (no llm_adapters)
IMPORTS = (
    "import torch, transformers; from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer; "
    "import transformers.models.llama.modeling_llama"
)


def commands(model: str | None = None) -> dict[str, list[str]]:
    cli = shutil.which("llm-adapters", path=str(Path(sys.executable).parent)) or "llm-adapters"
    cmds = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "help": [cli, "--help"],
        "plugins": [cli, "plugins", "--json"],
    }
    if model is not None:
        cmds["imports"] = [sys.executable, "-c", IMPORTS]
        cmds["load"] = [sys.executable, "-c", f"{IMPORTS}; import llm_adapters as la; la.load_model({model!r})"]
    return cmds


def run_once(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None, help="Also write the figures here.")
    parser.add_argument("--check", action="store_true", help="Exit 1 when a best time misses its target.")
    parser.add_argument(
        "--load",
        nargs="?",
        const="smollm2-135m",
        default=None,
        metavar="MODEL",
        help="Also time loading MODEL (default smollm2-135m) from its cache, against its imports alone.",
    )
    args = parser.parse_args(argv)
    cmds = commands(args.load)
    names = list(cmds)
    for name in names:  # warm the file cache once (and, for a model, convert it into the cache)
        run_once(cmds[name])
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            times[name].append(run_once(cmds[name]))
    base = min(times["python -c pass"])
    rows = []
    print(f"{'command':<16} {'best s':>8} {'median s':>9} {'best - python':>14} {'measured':>9} {'target':>7}")
    for name in names:
        best, median = min(times[name]), statistics.median(times[name])
        target = TARGETS.get(name)
        # the load counts over the imports it cannot avoid; the commands over bare Python's start
        measured = best - min(times["imports"]) if name == "load" else best
        row = {"command": name, "best": best, "median": median, "over_python": best - base, "target": target}
        if name == "load":
            row["over_imports"] = measured
        rows.append(row)
        mark = "" if target is None else (" ok" if measured <= target else " MISSED")
        print(f"{name:<16} {best:8.3f} {median:9.3f} {best - base:14.3f} {measured:9.3f} {target or '':>7}{mark}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rounds": args.rounds, "results": rows}, indent=2) + "\n")
    missed = [r["command"] for r in rows if r["target"] is not None and r.get("over_imports", r["best"]) > r["target"]]
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    raise SystemExit(main())

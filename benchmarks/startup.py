"""Start-up cost of the command line: ``llm-adapters --help`` and ``llm-adapters plugins`` against a bare
``python -c pass`` measured on the same machine in the same run.

    python benchmarks/startup.py                 # 5 rounds, best and median of each
    python benchmarks/startup.py --rounds 9 --json runs/startup.json

Every round runs each command once, in a rotated order, so that a burst of load hits all alike. Targets: ``--help``
under 0.5 s and ``plugins`` under 2 s on a quiet 2-core machine; ``--check`` exits 1 when a best time misses
its target.
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

TARGETS = {"help": 0.5, "plugins": 2.0}


def commands() -> dict[str, list[str]]:
    cli = shutil.which("llm-adapters", path=str(Path(sys.executable).parent)) or "llm-adapters"
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "help": [cli, "--help"],
        "plugins": [cli, "plugins", "--json"],
    }


def run_once(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None, help="Also write the figures here.")
    parser.add_argument("--check", action="store_true", help="Exit 1 when a best time misses its target.")
    args = parser.parse_args(argv)
    cmds = commands()
    names = list(cmds)
    for name in names:  # warm the file cache once
        run_once(cmds[name])
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            times[name].append(run_once(cmds[name]))
    base = min(times["python -c pass"])
    rows = []
    print(f"{'command':<16} {'best s':>8} {'median s':>9} {'best - python':>14} {'target':>7}")
    for name in names:
        best, median = min(times[name]), statistics.median(times[name])
        target = TARGETS.get(name)
        rows.append({"command": name, "best": best, "median": median, "over_python": best - base, "target": target})
        mark = "" if target is None else (" ok" if best <= target else " MISSED")
        print(f"{name:<16} {best:8.3f} {median:9.3f} {best - base:14.3f} {target or '':>7}{mark}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rounds": args.rounds, "results": rows}, indent=2) + "\n")
    missed = [r["command"] for r in rows if r["target"] is not None and r["best"] > r["target"]]
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    raise SystemExit(main())

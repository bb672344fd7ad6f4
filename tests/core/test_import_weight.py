"""What importing the kernel and starting the CLI costs: measured by the modules they load, in a fresh
subprocess (timings belong to ``benchmarks/startup.py``)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("torch", "transformers", "datasets", "accelerate", "pydantic")

PROBE = """
import json, sys
{body}
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def loaded_after(body: str) -> list[str]:
    """The heavy modules loaded after running ``body`` in a fresh interpreter."""
    code = PROBE.format(body=body, heavy=HEAVY)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


CLI = """
from llm_adapters.cli import main
try:
    main({argv!r})
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
"""


def test_importing_the_kernel_loads_nothing_heavy() -> None:
    assert loaded_after("import llm_adapters; llm_adapters.hookimpl; llm_adapters.__version__") == []


def test_cli_help_loads_no_torch_and_lists_plugin_commands() -> None:
    assert loaded_after(CLI.format(argv=["--help"])) == []


def test_a_command_help_is_built_without_torch() -> None:
    # the train command builds its flags from the run config (pydantic) only when asked
    assert loaded_after(CLI.format(argv=["train", "--help"])) == ["pydantic"]


def test_the_pytest_plugin_costs_nothing_until_its_fixture_is_used() -> None:
    assert loaded_after("import llm_adapters.testing.pytest_plugin") == []


def test_attaching_imports_torch_but_not_transformers_by_itself() -> None:
    body = "import llm_adapters as la; la.attach"
    assert loaded_after(body) == ["pydantic", "torch"]


def test_submodules_are_reachable_as_attributes_of_the_lazy_package() -> None:
    body = "import llm_adapters as la; assert callable(la.engine.model_family); assert la.registry.get_registry"
    assert "torch" in loaded_after(body)  # the engine is torch code: asking for it loads it
    out = subprocess.run(
        [sys.executable, "-c", "import llm_adapters as la; la.nope"], capture_output=True, text=True, timeout=120
    )
    assert "AttributeError: module 'llm_adapters' has no attribute 'nope'" in out.stderr

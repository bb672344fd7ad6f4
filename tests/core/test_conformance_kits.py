"""The conformance kits checked themselves: run on good plugins they pass, run on deliberately broken ones
(``kit_subjects.py``, each breaking one property) they fail exactly the checks of that property.

The kits run in one pytest subprocess over the generated files below (a test module per kit, plus two for
how ``AdapterConformance`` lists families); each test here reads its classes' outcomes from that run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from llm_adapters.testing.conformance import NO_FAMILIES

HERE = Path(__file__).resolve().parent

FAMILY_TESTS = """
import pytest

import kit_subjects as s
from llm_adapters.testing import FamilyConformance, use_plugins
from probe_plugin import LLAMA


class TestGoodLlama(FamilyConformance):
    family = LLAMA


class TestGoodBloom(FamilyConformance):
    family = s.BLOOM


class TestInstalledFamilyByName(FamilyConformance):
    family_name = "test-llama"

    @pytest.fixture(autouse=True)
    def installed(self):
        with use_plugins(s.KitPlugin(families=(LLAMA,))):
            yield


class TestWrongPath(FamilyConformance):
    family = s.WRONG_PATH


class TestKeyOnValue(FamilyConformance):
    family = s.KEY_ON_VALUE


class TestContiguousBloom(FamilyConformance):
    family = s.CONTIGUOUS_BLOOM


class TestWrongKVHeads(FamilyConformance):
    family = s.WRONG_KV_HEADS
"""

TASK_TESTS = """
import pytest

import kit_subjects as s
from llm_adapters.testing import TaskConformance, use_plugins


class TestGoodSum(TaskConformance):
    task = s.SumTask()
    limit = 3


class TestGoodColorByName(TaskConformance):
    task_name = "kit-color"

    @pytest.fixture(autouse=True)
    def installed(self):
        with use_plugins(s.KitPlugin(tasks=(s.ColorTask(),))):
            yield


class TestBlindSum(TaskConformance):
    task = s.BlindSumTask


class TestMissingGold(TaskConformance):
    task = s.MissingGoldColorTask()
"""

ADAPTER_TESTS = """
import pytest

import kit_subjects as s
import probe_plugin
from llm_adapters.testing import AdapterConformance, use_plugins


class TestGoodProbe(AdapterConformance):
    config = {"type": "probe"}

    @classmethod
    def family_names(cls):
        return ["test-llama"]

    @pytest.fixture(autouse=True)
    def installed(self):
        with use_plugins(probe_plugin):
            yield


class TestLeaky(TestGoodProbe):
    config = {"type": "leaky"}

    @pytest.fixture(autouse=True)
    def installed(self):
        with use_plugins(s.KitPlugin(adapters=(s.Leaky,), families=(probe_plugin.LLAMA,))):
            yield
"""

# collected under a plugin set whose registry cannot be built: two plugins register the family test-llama
CONFLICT_TESTS = """
import kit_subjects as s
from llm_adapters.testing import AdapterConformance
from probe_plugin import LLAMA, Probe

s.install(s.KitPlugin(adapters=(Probe,), families=(LLAMA,)), s.KitPlugin(families=(LLAMA,)))


class TestOnConflictingPlugins(AdapterConformance):
    config = {"type": "probe"}
"""

# collected with an adapter type but no family at all
NO_FAMILY_TESTS = """
import pytest

import kit_subjects as s
from llm_adapters.testing import AdapterConformance, use_plugins
from probe_plugin import Probe

s.install(s.KitPlugin(adapters=(Probe,)))


class TestWithoutFamilies(AdapterConformance):
    config = {"type": "probe"}

    @pytest.fixture(autouse=True)
    def installed(self):
        with use_plugins(s.KitPlugin(adapters=(Probe,))):
            yield
"""

INNER_CONFTEST = """
import torch

torch.set_num_threads(1)
"""

FILES = {
    "test_family_kit.py": FAMILY_TESTS,
    "test_task_kit.py": TASK_TESTS,
    "test_adapter_kit.py": ADAPTER_TESTS,
    "test_listing_conflict.py": CONFLICT_TESTS,
    "test_listing_no_family.py": NO_FAMILY_TESTS,
    "conftest.py": INNER_CONFTEST,
    "pytest.ini": "[pytest]\nfilterwarnings = ignore::DeprecationWarning\n",
}
_LINE = re.compile(r"^(?P<id>\S+::\S+) (?P<outcome>PASSED|FAILED|SKIPPED|ERROR|XFAIL|XPASS)(?: \((?P<reason>.*)\))?")


@dataclass
class InnerRun:
    """The outcome of every inner test (``file::Class::test[param]`` -> ``PASSED``, ...), skip reasons and
    the whole output."""

    outcomes: dict[str, str]
    reasons: dict[str, str]
    output: str

    def of(self, cls: str) -> dict[str, str]:
        """``test[param]`` -> outcome for the tests of class ``cls``."""
        found = {k.split("::", 2)[2]: v for k, v in self.outcomes.items() if k.split("::")[1:2] == [cls]}
        assert found, f"no test of {cls} ran:\n{self.output[-3000:]}"
        return found

    def failed(self, cls: str) -> set[str]:
        """The failed tests of ``cls``; every other test of it must have passed or been skipped."""
        outcomes = self.of(cls)
        assert set(outcomes.values()) <= {"PASSED", "FAILED", "SKIPPED"}, outcomes
        return {name for name, outcome in outcomes.items() if outcome == "FAILED"}


@pytest.fixture(scope="module")
def inner(tmp_path_factory: pytest.TempPathFactory) -> InnerRun:
    root = tmp_path_factory.mktemp("kits")
    for name, text in FILES.items():
        (root / name).write_text(text.lstrip(), encoding="utf-8")
    for module in ("kit_subjects.py", "probe_plugin.py"):
        shutil.copy(HERE / module, root / module)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLM_ADAPTERS_")}
    env.update(PYTHONDONTWRITEBYTECODE="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", COLUMNS="1000")
    args = ["-v", "-p", "no:cacheprovider", "--continue-on-collection-errors", "--tb=short", str(root)]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *args], cwd=root, env=env, capture_output=True, text=True, timeout=600
    )
    outcomes, reasons = {}, {}
    for line in done.stdout.splitlines():
        m = _LINE.match(line)
        if m:
            outcomes[m["id"]] = m["outcome"]
            reasons[m["id"]] = m["reason"] or ""
    return InnerRun(outcomes, reasons, done.stdout + done.stderr)


# ---- FamilyConformance --------------------------------------------------------------------------------
FAMILY_CHECKS = {
    "test_tiny_config_builds_a_model[tiny]",
    "test_roles_resolve_to_modules[tiny]",
    "test_role_modules_run_in_the_forward_pass[tiny]",
    "test_projection_shapes_match_the_dims[tiny]",
    "test_q_k_v_are_the_models_own[tiny]",
    "test_dims_match_the_kv_cache[tiny]",
}


@pytest.mark.parametrize("cls", ["TestGoodLlama", "TestGoodBloom", "TestInstalledFamilyByName"])
def test_family_kit_passes_good_families(inner: InnerRun, cls: str) -> None:
    assert inner.of(cls) == dict.fromkeys(FAMILY_CHECKS, "PASSED")


def test_family_kit_fails_a_role_on_a_missing_module(inner: InnerRun) -> None:
    assert inner.failed("TestWrongPath") == {
        "test_roles_resolve_to_modules[tiny]",
        "test_role_modules_run_in_the_forward_pass[tiny]",
        "test_projection_shapes_match_the_dims[tiny]",
    }
    assert "mlp.down: no module at model.layers.0.mlp.down_projection" in inner.output


def test_family_kit_fails_the_key_role_on_the_value_projection(inner: InnerRun) -> None:
    assert inner.failed("TestKeyOnValue") == {
        "test_roles_resolve_to_modules[tiny]",  # role_of gives attn.k back for the value projection
        "test_q_k_v_are_the_models_own[tiny]",
    }


def test_family_kit_fails_a_wrong_fused_layout(inner: InnerRun) -> None:
    assert inner.failed("TestContiguousBloom") == {"test_q_k_v_are_the_models_own[tiny]"}
    assert "attn.k: the rows the family selects on transformer.h.0.self_attention.query_key_value" in inner.output


def test_family_kit_fails_dims_that_disagree_with_the_cache(inner: InnerRun) -> None:
    assert inner.failed("TestWrongKVHeads") == {
        "test_projection_shapes_match_the_dims[tiny]",
        "test_dims_match_the_kv_cache[tiny]",
    }


# ---- TaskConformance ----------------------------------------------------------------------------------
TASK_CHECKS = {
    "test_load_returns_examples",
    "test_prompt_fields_are_two_strings",
    "test_gold_answer_scores_correct",
    "test_wrong_answer_scores_incorrect",
    "test_options_hold_the_gold_label",
    "test_unknown_scoring_mode_raises",
    "test_spellings_include_the_name",
}


def test_task_kit_passes_good_tasks(inner: InnerRun) -> None:
    assert inner.of("TestGoodColorByName") == dict.fromkeys(TASK_CHECKS, "PASSED")
    sums = inner.of("TestGoodSum")
    assert sums.pop("test_options_hold_the_gold_label") == "SKIPPED"  # an open-answer task
    assert sums == dict.fromkeys(TASK_CHECKS - {"test_options_hold_the_gold_label"}, "PASSED")


def test_task_kit_fails_an_extraction_that_never_finds_the_answer(inner: InnerRun) -> None:
    assert inner.failed("TestBlindSum") == {"test_gold_answer_scores_correct"}
    assert "task 'kit-blind-sum': 4 example(s) whose gold answer does not score correct" in inner.output


def test_task_kit_fails_options_without_the_gold_label(inner: InnerRun) -> None:
    assert inner.failed("TestMissingGold") == {"test_options_hold_the_gold_label"}


# ---- AdapterConformance -------------------------------------------------------------------------------
def test_adapter_kit_passes_a_good_adapter(inner: InnerRun) -> None:
    outcomes = inner.of("TestGoodProbe")
    assert outcomes.pop("test_two_adapters_of_different_types[test-llama]") == "SKIPPED"  # one type installed
    assert set(outcomes.values()) == {"PASSED"} and len(outcomes) == 8


def test_adapter_kit_fails_an_adapter_whose_detach_leaves_a_change(inner: InnerRun) -> None:
    assert inner.failed("TestLeaky") == {
        "test_detach_restores_base[test-llama]",
        "test_changes_outputs_and_disabled_gives_base[test-llama]",
    }


# ---- listing the families -----------------------------------------------------------------------------
def test_a_plugin_set_that_cannot_be_listed_is_a_collection_error(inner: InnerRun) -> None:
    assert not [k for k in inner.outcomes if k.startswith("test_listing_conflict.py")]
    assert "ERROR collecting test_listing_conflict.py" in inner.output
    assert "the adapter conformance suite cannot list the installed model families" in inner.output
    assert "model family 'test-llama' is registered by both" in inner.output


def test_no_family_gives_one_skipped_test_per_check_that_says_so(inner: InnerRun) -> None:
    outcomes = inner.of("TestWithoutFamilies")
    assert outcomes.pop("test_config_fields_are_described_and_defaults_valid") == "PASSED"
    assert set(outcomes) == {f"{name}[no-family]" for name in _family_checks_of_the_adapter_kit()}
    assert set(outcomes.values()) == {"SKIPPED"}
    reasons = {v for k, v in inner.reasons.items() if "TestWithoutFamilies" in k and inner.outcomes[k] == "SKIPPED"}
    assert reasons == {NO_FAMILIES}


def _family_checks_of_the_adapter_kit() -> set[str]:
    from llm_adapters.testing.conformance import AdapterConformance

    return {
        name
        for name in dir(AdapterConformance)
        if name.startswith("test_") and "family" in getattr(AdapterConformance, name).__code__.co_varnames
    }

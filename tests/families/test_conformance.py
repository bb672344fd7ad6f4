"""The family conformance kit on every first-party family, Falcon's three fused layouts included."""

from __future__ import annotations

from llm_adapters.testing import FamilyConformance
from llm_adapters_families import bloom, falcon, gpt2, gpt_neo, gpt_neox, gptj, llama, opt, phi

from .helpers import EXPECTED_FAMILIES


class TestLlama(FamilyConformance):
    family = llama.FAMILY


class TestBloom(FamilyConformance):
    family = bloom.FAMILY


class TestOPT(FamilyConformance):
    family = opt.FAMILY


class TestGPTJ(FamilyConformance):
    family = gptj.FAMILY


class TestGPT2(FamilyConformance):
    family = gpt2.FAMILY


class TestGPTNeo(FamilyConformance):
    family = gpt_neo.FAMILY


class TestGPTNeoX(FamilyConformance):
    family = gpt_neox.FAMILY


class TestPhi(FamilyConformance):
    family = phi.FAMILY


class TestFalcon(FamilyConformance):
    """Falcon-40B's grouped layout (the tiny config), Falcon-7B's multi-query one and the ungrouped one."""

    family = falcon.FAMILY
    variants = {
        "multi-query": {"new_decoder_architecture": False, "multi_query": True},
        "per-head": {"new_decoder_architecture": False, "multi_query": False, "num_kv_heads": 4},
    }


def test_every_first_party_family_has_a_conformance_class() -> None:
    covered = {cls.family.name for cls in FamilyConformance.__subclasses__() if cls.family is not None}
    assert covered == set(EXPECTED_FAMILIES)

"""``-o key=value`` options: JSON values, comma lists for list fields, a single role or suffix as a list, a
regular expression kept whole, and a key given twice refused."""

from __future__ import annotations

import pytest

from llm_adapters.config import coerce_options, parse_config, parse_option, parse_options
from llm_adapters.errors import ConfigError


def test_values_are_json_when_they_parse_and_strings_otherwise() -> None:
    assert parse_option("rank=4") == ("rank", 4)
    assert parse_option("rank=4.5") == ("rank", 4.5)
    assert parse_option("flag=true") == ("flag", True)
    assert parse_option('target_modules=["q_proj"]') == ("target_modules", ["q_proj"])
    assert parse_option("target_modules=attn.q") == ("target_modules", "attn.q")
    assert parse_option("name=a=b") == ("name", "a=b")
    with pytest.raises(ConfigError, match=r"option 'rank' must look like key=value"):
        parse_option("rank")
    with pytest.raises(ConfigError, match=r"option '=4' has no key before '='"):
        parse_option("=4")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("attn.q", ["attn.q"]),  # a single role: a list of one, not a regex
        ("q_proj", ["q_proj"]),  # a single suffix
        ("attn.q,attn.v", ["attn.q", "attn.v"]),
        (" q_proj , v_proj ,", ["q_proj", "v_proj"]),
        (r"model\.layers\.\d+\.self_attn\.q_proj", r"model\.layers\.\d+\.self_attn\.q_proj"),  # a regex stays whole
        (".*(q|v)_proj", ".*(q|v)_proj"),
    ],
)
def test_target_modules_from_the_command_line(raw: str, expected: object) -> None:
    options = coerce_options("probe", dict([parse_option(f"target_modules={raw}")]))
    assert options["target_modules"] == expected
    assert parse_config({"type": "probe", **options}).target_modules == expected


def test_fields_that_take_no_list_are_left_alone() -> None:
    assert coerce_options("probe", {"kind": "post", "rank": 3}) == {"kind": "post", "rank": 3}
    assert coerce_options("probe", {"unknown": "a,b"}) == {"unknown": "a,b"}  # the config check reports it


def test_a_key_given_twice_names_both_values() -> None:
    assert parse_options(["rank=2", "kind=pre"]) == {"rank": 2, "kind": "pre"}
    with pytest.raises(ConfigError) as err:
        parse_options(["rank=2", "kind=pre", "rank=8"])
    assert str(err.value) == (
        "option 'rank' is given twice (2 and 8); give it once (for a list, separate the items with commas: key=a,b)"
    )


def test_an_unknown_adapter_type_is_reported_when_shaping_options() -> None:
    with pytest.raises(ConfigError, match=r"unknown adapter type 'nope'; installed adapter types: probe"):
        coerce_options("nope", {"target_modules": "q_proj"})

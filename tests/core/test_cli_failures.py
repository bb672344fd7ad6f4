"""A broken plugin as the CLI reports it: one clean line on stderr, the rest of the CLI working; under
``LLM_ADAPTERS_STRICT_PLUGINS=1`` the listing still prints, then the CLI exits 1."""

from __future__ import annotations

import json

import click
import pytest

from llm_adapters import hookimpl
from llm_adapters.cli import main
from llm_adapters.testing import use_plugins

from . import probe_plugin


class BrokenCommands:
    @hookimpl
    def register_commands(self, cli):  # type: ignore[no-untyped-def]
        raise RuntimeError("no database")


class Hello:
    @hookimpl
    def register_commands(self, cli):  # type: ignore[no-untyped-def]
        @cli.command("hello")
        def hello() -> None:
            """Say hello."""
            click.echo("hello")


def run(args: list[str]) -> int:
    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_a_broken_plugin_is_one_clean_line_and_the_rest_works(capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    monkeypatch.delenv("LLM_ADAPTERS_STRICT_PLUGINS", raising=False)
    with use_plugins(probe_plugin, BrokenCommands(), Hello()):
        assert run(["hello"]) == 0
    out, err = capsys.readouterr()
    assert out == "hello\n"
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("llm-adapters: skipping plugin 'BrokenCommands-")
    assert lines[0].endswith("': RuntimeError in register_commands: no database")
    assert "Warning" not in err and ".py" not in err


def test_strict_mode_lists_every_plugin_then_exits_1(capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    monkeypatch.setenv("LLM_ADAPTERS_STRICT_PLUGINS", "1")
    with use_plugins(probe_plugin, BrokenCommands(), Hello()):
        assert run(["plugins", "--json"]) == 1
        out, err = capsys.readouterr()
        rows = {r["name"].split("-")[0]: r for r in json.loads(out)}
        assert rows["BrokenCommands"]["error"] == "RuntimeError in register_commands: no database"
        assert rows["Hello"]["commands"] == ["hello"] and rows["Hello"]["error"] is None
        assert err.splitlines()[-1].startswith("Error: plugin 'BrokenCommands-")
        assert err.splitlines()[-1].endswith("no database (LLM_ADAPTERS_STRICT_PLUGINS is set)")
        assert run(["hello"]) == 1  # any other command refuses to run
        out, err = capsys.readouterr()
        assert out == "" and "Error: plugin 'BrokenCommands-" in err

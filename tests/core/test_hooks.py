"""One test per hook: what a plugin registers through it arrives where it should."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

import llm_adapters as la
from llm_adapters import ModelSource, hookimpl
from llm_adapters.models import default_model, local_checkpoint
from llm_adapters.task import Task
from llm_adapters.template import Template, get_template, templates
from llm_adapters.testing import use_plugins

from . import probe_plugin


class EchoTask(Task):
    name = "echo"
    suite = "toy"

    def extract(self, generation: str, scoring: str) -> str:
        return generation.strip()

    def is_correct(self, prediction, answer) -> bool:  # type: ignore[no-untyped-def]
        return prediction == answer


class TaskPlugin:
    @hookimpl
    def register_tasks(self, register):  # type: ignore[no-untyped-def]
        register(EchoTask)


class CommandPlugin:
    @hookimpl
    def register_commands(self, cli):  # type: ignore[no-untyped-def]
        @cli.command("hello")
        @click.argument("who")
        def hello(who: str) -> None:
            """Say hello."""
            click.echo(f"hello {who}")


def test_hook_register_adapters() -> None:
    assert la.adapter_types() == {"probe": probe_plugin.Probe}
    assert la.get_registry().adapters["probe"].plugin == "tests.core.probe_plugin"


def test_hook_register_model_families() -> None:
    fams = la.model_families()
    assert set(fams) == {"test-llama", "test-gpt2"}
    assert la.require_family("gpt2") is probe_plugin.GPT2


def test_hook_register_tasks() -> None:
    with use_plugins(TaskPlugin()):
        task = la.get_task("ECHO")  # case-insensitive
        assert isinstance(task, EchoTask)
        assert task.is_correct(task.extract(" 4 ", "robust"), "4")
        assert la.get_registry().tasks["echo"].plugin.startswith("TaskPlugin")


def test_hook_register_commands() -> None:
    from llm_adapters import cli as cli_module

    with use_plugins(CommandPlugin()):
        group = cli_module.build_cli()
        result = CliRunner().invoke(group, ["hello", "world"])
    assert result.exit_code == 0, result.output
    assert result.output == "hello world\n"
    group.commands.pop("hello")


class TemplatePlugin:
    @hookimpl
    def register_templates(self, register):  # type: ignore[no-untyped-def]
        register(Template("qa", "question / answer", "Q: {instruction}\n{input}\nA: ", "Q: {instruction}\nA: "))


def test_hook_register_templates() -> None:
    with use_plugins(TemplatePlugin()):
        assert list(templates()) == ["qa"]
        assert get_template("qa").prompt("Add 2 and 3.") == "Q: Add 2 and 3.\nA: "
        assert get_template("qa").render("Add 2 and 3.", "", "5") == "Q: Add 2 and 3.\nA: 5"
        assert la.get_registry().templates["qa"].plugin.startswith("TemplatePlugin")


class TinySource(ModelSource):
    name = "tiny"
    models = ("tiny-model",)
    default = True
    default_model = "tiny-model"

    def checkpoint(self, name_or_path: str) -> str:
        return f"/models/{name_or_path}"


class SourcePlugin:
    @hookimpl
    def register_model_sources(self, register):  # type: ignore[no-untyped-def]
        register(TinySource())


def test_hook_register_model_sources() -> None:
    with use_plugins(SourcePlugin()):
        assert default_model() == "tiny-model"
        assert local_checkpoint("tiny-model") == "/models/tiny-model"
        assert la.get_registry().model_sources["tiny"].plugin.startswith("SourcePlugin")


def test_commands_exist_only_while_their_plugin_is_installed() -> None:
    from llm_adapters import cli as cli_module

    with use_plugins(CommandPlugin()):
        assert "hello" in cli_module.build_cli().commands
    with use_plugins():
        group = cli_module.build_cli()
        assert sorted(group.commands) == ["plugins"]
        result = CliRunner().invoke(group, ["hello", "world"])
    assert result.exit_code == 2 and "No such command 'hello'" in result.output


class ClashingCommand:
    @hookimpl
    def register_commands(self, cli):  # type: ignore[no-untyped-def]
        @cli.command("plugins")
        def plugins() -> None:
            """A second 'plugins'."""


def test_a_command_name_already_taken_fails_that_plugin_alone() -> None:
    from llm_adapters import cli as cli_module

    with use_plugins(CommandPlugin(), ClashingCommand()) as pm:
        with pytest.warns(UserWarning, match=r"command 'plugins' is already provided by 'llm-adapters-core'"):
            group = cli_module.build_cli()
        assert sorted(group.commands) == ["hello", "plugins"]
        assert group.commands["plugins"].help.startswith("List installed plugins")
        clash = next(r for n, r in pm.records.items() if n.startswith("ClashingCommand"))
        assert "already provided" in clash.error


class Second:
    @hookimpl
    def register_templates(self, register):  # type: ignore[no-untyped-def]
        register(Template("b", "", "{instruction}", "{instruction}"))


class First:
    @hookimpl(tryfirst=True)
    def register_templates(self, register):  # type: ignore[no-untyped-def]
        register(Template("a", "", "{instruction}", "{instruction}"))


class Wrapping:
    seen: list[str] = []

    @hookimpl(wrapper=True)
    def register_templates(self, register):  # type: ignore[no-untyped-def]
        Wrapping.seen.append("before")
        result = yield
        Wrapping.seen.append("after")
        return result


def test_hooks_are_called_through_pluggy_one_plugin_at_a_time() -> None:
    # tryfirst comes before plugins loaded earlier; a plugin's own wrapper wraps its own call
    with use_plugins(Second(), First(), Wrapping()):
        assert list(templates()) == ["a", "b"]
    assert Wrapping.seen == ["before", "after"]

"""One test per hook: what a plugin registers through it arrives where it should."""

from __future__ import annotations

import click
from click.testing import CliRunner

import llm_adapters as la
from llm_adapters import hookimpl
from llm_adapters.tasks import Task
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

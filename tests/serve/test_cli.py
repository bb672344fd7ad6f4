"""The ``serve`` command: ``--adapter-path [NAME=]DIR`` parsing, what loading refuses (one-line errors), and the
real command started as a process, answering over HTTP and stopping on Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from llm_adapters.cli import main
from llm_adapters.errors import ConfigError
from llm_adapters_serve.host import ModelHost, parse_adapter_spec

from .conftest import build_model_dir, plugins, plugins_list


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    with plugins():
        return build_model_dir(tmp_path_factory.mktemp("serve-cli"))


@pytest.fixture(autouse=True)
def _plugins() -> Iterator[None]:
    with plugins():
        yield


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def test_adapter_specs(tmp_path: Path) -> None:
    (tmp_path / "math-v2").mkdir()
    (tmp_path / "odd.name").mkdir()
    assert parse_adapter_spec(f"calc={tmp_path / 'math-v2'}") == ("calc", tmp_path / "math-v2")
    assert parse_adapter_spec(str(tmp_path / "math-v2")) == ("math-v2", tmp_path / "math-v2")
    with pytest.raises(ConfigError, match=r"the directory name 'odd\.name' is not a usable model name .* NAME=DIR"):
        parse_adapter_spec(str(tmp_path / "odd.name"))
    with pytest.raises(ConfigError, match=r"'9lives' is not a usable model name"):
        parse_adapter_spec(f"9lives={tmp_path / 'math-v2'}")
    with pytest.raises(ConfigError, match=r"is not a directory"):
        parse_adapter_spec(f"calc={tmp_path / 'missing'}")


def test_a_directory_whose_name_holds_an_equals_sign(tmp_path: Path) -> None:
    (tmp_path / "x=y").mkdir()
    with pytest.raises(ConfigError, match=r"the directory name 'x=y' is not a usable model name"):
        parse_adapter_spec(str(tmp_path / "x=y"))  # taken as the directory, not as NAME=DIR
    assert parse_adapter_spec(f"xy={tmp_path / 'x=y'}") == ("xy", tmp_path / "x=y")


def test_loading_refuses_clashing_names(dirs: tuple[Path, dict[str, Path]]) -> None:
    model_dir, adapters = dirs
    with pytest.raises(ConfigError, match="the name 'same' is given twice"):
        ModelHost.load(str(model_dir), [f"same={adapters['alpha']}", f"same={adapters['beta-dir']}"])
    with pytest.raises(ConfigError, match="the base model and an adapter are both named 'alpha'"):
        ModelHost.load(str(model_dir), [str(adapters["alpha"])], served_model_name="alpha")


def test_command_errors_are_one_line(dirs: tuple[Path, dict[str, Path]], capsys: pytest.CaptureFixture[str]) -> None:
    model_dir, adapters = dirs
    code, err = run(["serve", "--model", str(model_dir), "--adapter-path", "bad.name=/nowhere"], capsys)
    assert code == 1 and err.strip().splitlines() == [
        "Error: --adapter-path bad.name=/nowhere: 'bad.name' is not a usable model name (a letter, then letters, "
        "digits, '-' or '_')"
    ]
    code, err = run(["serve", "--model", str(model_dir), "--template", "nope"], capsys)
    assert code == 1 and err.startswith("Error: unknown prompt template 'nope'") and len(err.strip().splitlines()) == 1
    code, err = run(["serve", "--max-batch-size", "0"], capsys)
    assert code == 2 and "Invalid value for '--max-batch-size'" in err


def test_help_names_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        main(["serve", "--help"])
    except SystemExit as exc:
        assert exc.code == 0
    out = capsys.readouterr().out
    for option in ("--model", "--adapter-path", "--host", "--port", "--api-key", "--max-batch-size", "--template"):
        assert option in out


@pytest.mark.slow
def test_the_command_serves_and_stops_on_ctrl_c(dirs: tuple[Path, dict[str, Path]]) -> None:
    model_dir, adapters = dirs
    exe = Path(sys.executable).with_name("llm-adapters")
    env = dict(os.environ, OMP_NUM_THREADS="1", LLM_ADAPTERS_API_KEY="k3y")
    args = [str(exe), "serve", "--model", str(model_dir), "--port", "0", "--adapter-path", f"calc={adapters['alpha']}"]
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True, env=env)
    try:
        lines = []
        url = None
        deadline = time.monotonic() + 120
        while url is None and time.monotonic() < deadline:
            line = proc.stderr.readline()  # type: ignore[union-attr]
            if not line:
                break
            lines.append(line)
            found = re.search(r"\(playground\) and (http://127\.0\.0\.1:\d+)/v1 \(API\)", line)
            url = found.group(1) if found else None
        assert url, "".join(lines)
        assert lines[-1].startswith(f"Serving {model_dir}, calc at http://127.0.0.1:")
        request = urllib.request.Request(url + "/v1/models", headers={"Authorization": "Bearer k3y"})
        with urllib.request.urlopen(request, timeout=30) as res:
            assert [m["id"] for m in json.load(res)["data"]] == [str(model_dir), "calc"]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
        rest = proc.stderr.read()  # type: ignore[union-attr]
        assert "Stopping." in rest and "Traceback" not in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_quantize_reaches_load_model_only_when_given(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import llm_adapters

    calls: list[dict[str, object]] = []

    def fake_load_model(name_or_path: str, **kwargs: object) -> None:
        calls.append(kwargs)
        raise ConfigError("stop here")

    monkeypatch.setattr(llm_adapters, "load_model", fake_load_model)
    assert run(["serve", "--model", "m", "--quantize", "4bit"], capsys) == (1, "Error: stop here\n")
    assert run(["serve", "--model", "m", "--dtype", "bfloat16"], capsys) == (1, "Error: stop here\n")
    assert calls == [{"dtype": "auto", "quantize": "4bit"}, {"dtype": "bfloat16"}]
    code, err = run(["serve", "--quantize", "2bit"], capsys)
    assert code == 2 and "'2bit' is not one of '8bit', '4bit'" in err


def test_an_adapter_that_cannot_be_routed_per_row_is_refused_at_start() -> None:
    """A prompt-based adapter changes the whole batch's inputs: the server cannot mix it with other rows, and
    says so when it starts rather than on a request."""
    import llm_adapters as la
    import llm_adapters_prompt.plugin as prompt_plugin
    from llm_adapters.testing import tiny_model_from_config, tiny_tokenizer, use_plugins

    from .conftest import TINY

    with use_plugins(prompt_plugin, *plugins_list()):
        model = tiny_model_from_config(TINY)
        la.attach(model, {"type": "prompt", "num_virtual_tokens": 2}, name="soft")
        with pytest.raises(ConfigError, match=r"the adapters soft cannot be served together: .*"):
            ModelHost(model, tiny_tokenizer(), "base", {"soft": "(in memory)"}).prepare()

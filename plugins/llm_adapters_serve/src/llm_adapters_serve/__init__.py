"""An OpenAI-compatible server for llm-adapters, as a plugin (entry point ``serve`` in the group ``llm_adapters``).

* :mod:`.settings`: the server's options (host, port, batching, API key, limits);
* :mod:`.protocol`: OpenAI request parsing and response shapes (no torch);
* :mod:`.errors`: errors shaped as the OpenAI API shapes them;
* :mod:`.prompts`: chat messages to prompt text (the tokenizer's chat template or a registry template);
* :mod:`.host`: the model, its tokenizer and its adapters, loaded once;
* :mod:`.scheduler`: one thread that owns the model and decodes pending requests together, one batch at a time;
* :mod:`.server`: the HTTP layer (standard library), server-sent events, the playground page (``static/``).
"""

from __future__ import annotations

from llm_adapters import hookimpl
from llm_adapters.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "ServeSettings": ".settings",
    "ModelHost": ".host",
    "Scheduler": ".scheduler",
    "RunningServer": ".server",
    "start_server": ".server",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


@hookimpl
def register_commands(cli):  # type: ignore[no-untyped-def]
    from .cli import command

    cli.add_command(command)

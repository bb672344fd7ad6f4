"""The model-source contract: names or files that :func:`llm_adapters.load_model` turns into something
transformers can load.

The core itself loads local model directories and hub ids. Anything else (a model shipped inside a Python
package, a GGUF file that must be converted first) comes from a plugin that registers a :class:`ModelSource`
through the ``register_model_sources`` hook. :func:`llm_adapters.load_model` asks every installed source, in
registration order, whether it :meth:`~ModelSource.matches` the name it was given; the first that does
turns it into a local checkpoint directory (or a hub id) with :meth:`~ModelSource.checkpoint`.
"""

from __future__ import annotations

from typing import ClassVar


class ModelSource:
    """Base class of model sources. Subclasses set ``name`` and implement :meth:`matches` and
    :meth:`checkpoint`.

    Attributes:
        name: short unique identifier of the source (``"embedded"``, ``"gguf"``).
        description: one line shown by ``llm-adapters plugins``.
        models: the model names this source answers to by name (listed by ``llm-adapters plugins``);
            sources that recognise paths (say, ``*.gguf``) leave it empty.
        default: whether ``default_model`` is *the* model used when none is named (at most one installed
            source may say so).
        default_model: the name loaded when this source is the default.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    models: tuple[str, ...] = ()
    default: bool = False
    default_model: str | None = None

    def matches(self, name_or_path: str) -> bool:
        """Whether this source handles ``name_or_path``."""
        return name_or_path in self.models

    def checkpoint(self, name_or_path: str) -> str:
        """A local directory (or hub id) that ``from_pretrained`` loads for ``name_or_path``; may do
        one-time work such as converting and caching. Raise :class:`llm_adapters.errors.ModelLoadError`
        with what to do when it cannot."""
        raise NotImplementedError

    def label(self, name_or_path: str) -> str:
        """The name recorded on the loaded model (``config._name_or_path``), which adapter files and
        reports show. Default: ``name_or_path`` itself."""
        return name_or_path

"""Exceptions raised by the core. Each message says what was wrong, where, and what to do."""

from __future__ import annotations


class LLMAdaptersError(Exception):
    """Base class of every error raised on purpose by llm-adapters."""


class PluginError(LLMAdaptersError):
    """A plugin could not be loaded or registered something invalid."""


class PluginConflictError(PluginError):
    """Two plugins registered the same name."""


class ConfigError(LLMAdaptersError, ValueError):
    """An adapter or run configuration is invalid."""


class TargetError(LLMAdaptersError, ValueError):
    """Adapter targets could not be resolved on a model."""


class FamilyError(LLMAdaptersError, ValueError):
    """No model family covers a model, or a family cannot resolve a role."""


class AdapterFileError(LLMAdaptersError, ValueError):
    """An adapter directory is missing, malformed or does not fit the model."""


class AdapterStateError(LLMAdaptersError, ValueError):
    """An operation names an adapter that is not attached, or clashes with the model's adapter state."""


class ModelLoadError(LLMAdaptersError):
    """A model could not be found or loaded."""


class OutputError(LLMAdaptersError, OSError):
    """An output location cannot be used: a file, not writable, full, or being written by another run."""

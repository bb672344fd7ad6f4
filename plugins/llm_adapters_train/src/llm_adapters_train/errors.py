"""Errors of training runs."""

from __future__ import annotations

from pathlib import Path

from llm_adapters.errors import LLMAdaptersError


class TrainingError(LLMAdaptersError):
    """A training run could not start or continue."""


class TrainingInterrupted(TrainingError):
    """The run was interrupted (Ctrl-C); ``checkpoint`` is the last complete checkpoint, if any."""

    def __init__(self, message: str, checkpoint: Path | None) -> None:
        super().__init__(message)
        self.checkpoint = checkpoint

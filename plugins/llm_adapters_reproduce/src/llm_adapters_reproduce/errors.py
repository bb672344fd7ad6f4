"""The error of a reproduction run in which some trainings or evaluations failed."""

from __future__ import annotations

from llm_adapters.errors import LLMAdaptersError


class ReproduceError(LLMAdaptersError):
    """One or more methods failed to train or evaluate; the others finished and their results were written."""

"""Test helpers shipped with the core, for the core's own tests and for every plugin package:

* :func:`use_plugins`: run with exactly the given inline plugins (no entry points), restored afterwards;
* :func:`tiny_model`: a tiny seeded random causal LM of a family, built from its ``tiny_config``;
* :mod:`llm_adapters.testing.conformance`: the conformance suite every adapter type must pass.
"""

from __future__ import annotations

from .models import tiny_model, tiny_model_from_config, tiny_tokenizer
from .plugins import use_plugins

__all__ = ["tiny_model", "tiny_model_from_config", "tiny_tokenizer", "use_plugins"]

"""Test helpers shipped with the core, for the core's own tests and for every plugin package:

* :func:`use_plugins`: run with exactly the given inline plugins (no entry points), restored afterwards;
* :func:`tiny_model`: a tiny seeded random causal LM of a family, built from its ``tiny_config``;
* :func:`tiny_tokenizer`: a character-level tokenizer built in-process;
* the conformance kits for plugin authors: :class:`AdapterConformance` (every adapter type),
  :class:`FamilyConformance` (every model family), :class:`TaskConformance` (every task).

Names load on first use, so that pytest's start-up (which imports the ``pytest11`` entry point below this
package) imports neither torch nor transformers.
"""

from __future__ import annotations

from ..lazy import lazy_exports

_EXPORTS = {
    "defaults_fall_short": ".conformance",
    "AdapterConformance": ".conformance",
    "FamilyConformance": ".family_conformance",
    "TaskConformance": ".task_conformance",
    "tiny_model": ".models",
    "tiny_model_from_config": ".models",
    "tiny_tokenizer": ".models",
    "use_plugins": ".plugins",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

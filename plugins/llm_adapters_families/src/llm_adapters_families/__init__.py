"""Model families for llm-adapters: where each architecture keeps its attention and MLP projections.

Each module of this package describes one architecture as a :class:`llm_adapters.ModelFamily` and registers
it through its own entry point (group ``llm_adapters``), so a family can be listed or disabled alone. The
families hold data only: module paths per role, the fused q/k/v layout, and a tiny configuration for tests.
See ``docs/placements.md`` for where the adapter types go on each family.
"""

__version__ = "0.1.0"

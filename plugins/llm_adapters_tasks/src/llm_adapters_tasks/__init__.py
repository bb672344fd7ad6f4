"""Math and commonsense reasoning tasks of the LLM-Adapters benchmarks, as an llm-adapters plugin.

Two entry points (group ``llm_adapters``): ``math`` (:mod:`.math_tasks`) and ``commonsense``
(:mod:`.commonsense_tasks`), so either suite can be listed or disabled on its own.
"""

__version__ = "0.1.0"

"""The ``ia3`` adapter config: validated, every field described."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from llm_adapters import AdapterConfig

#: Targets, in roles, used when ``target_modules`` is not given: the keys, the values and the feed-forward's
#: hidden activation (the input of its down projection), as in the paper.
DEFAULT_TARGETS: tuple[str, ...] = ("attn.k", "attn.v", "mlp.down")

#: The kind a site gets from the role its module plays: the input of ``mlp.down`` is rescaled, the output of
#: every other module (a target with no known role too).
KIND_BY_ROLE: tuple[tuple[str, Literal["pre", "post"]], ...] = (("mlp.down", "pre"),)


class IA3Config(AdapterConfig):
    """Config of an (IA)^3 adapter: where its vectors go (``target_modules``) and how they start."""

    type: Literal["ia3"] = Field("ia3", description="The adapter type: always 'ia3'.")
    init: Literal["ones", "normal"] = Field(
        "ones",
        description=(
            "How the scaling vectors start: 'ones' (the paper's: the adapted model equals the base model) or "
            "'normal' (1 + init_std * N(0, 1), so that tests see an effect without training)."
        ),
    )
    init_std: float = Field(
        0.02,
        gt=0.0,
        le=1.0,
        description="Standard deviation of the vectors around 1 with init='normal', in (0, 1]; unused with 'ones'.",
    )

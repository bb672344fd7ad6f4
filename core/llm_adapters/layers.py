"""The torch side of the adapter contract: the modules an adapter type builds.

:class:`AdapterLayer` is one adapter's contribution at one module (built by
:meth:`llm_adapters.adapter.AdapterType.create_layer`); :class:`ModelAdapter` is a model-level adapter
(built by :meth:`llm_adapters.adapter.AdapterType.create_model_adapter`). The rest of the contract (configs,
placements, sites, adapter types) lives in :mod:`llm_adapters.adapter`, which does not import torch.

Layer kinds and the order in which the core's wrapper composes them around one base module ``W``
(adapters in the order they were attached; see :mod:`llm_adapters.engine.wrapper`)::

    x' = pre_n(...pre_1(x))                 # "pre":      returns the new input,  e.g. x + f(x)
    y  = W(x') + sum_i par_i(x', W(x'))     # "parallel": returns a delta added to the output
    y' = post_n(...post_1(y))               # "post":     returns the new output, e.g. y + f(y)

Parallel layers see the base's actual input ``x'`` so that merging a mergeable layer into ``W`` gives
exactly the unmerged output. A mergeable layer (``mergeable = True``) also implements
:meth:`AdapterLayer.delta_weight`.

Prompt-based methods (prefix / prompt tuning) are *model-level*: they implement
:meth:`~llm_adapters.adapter.AdapterType.create_model_adapter` instead of placements and return a
:class:`ModelAdapter`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn


class AdapterLayer(nn.Module):
    """One adapter's contribution at one site. Subclasses implement ``forward`` for their kind:

    * ``pre``:  ``forward(x) -> x'``  (x: ``(..., d_in)``)
    * ``parallel``: ``forward(x, base_output) -> delta`` (x: ``(..., d_in)``, result ``(..., d_out)``)
    * ``post``: ``forward(y) -> y'``  (y: ``(..., d_out)``)

    Inputs arrive in the layer's own parameter dtype; the core casts results back.
    """

    mergeable: ClassVar[bool] = False
    #: True when delta_weight() depends on the base weight (DoRA): the core then keeps the delta it merged
    #: so that unmerge subtracts exactly that.
    delta_uses_base_weight: ClassVar[bool] = False

    def delta_weight(self) -> torch.Tensor:
        """``(d_out, d_in)`` change to the base weight equivalent to this layer (mergeable layers only)."""
        raise NotImplementedError(f"{type(self).__name__} cannot be merged")


class ModelAdapter(nn.Module):
    """A model-level adapter (prompt-based methods). The core stores it on the model, saves its parameters,
    and, while it is active, calls :meth:`pre_forward` before and :meth:`post_forward` after every forward
    of the model (``model(...)``, so also every step of ``model.generate`` and every training step).

    Several active model-level adapters are called in attachment order before the forward and in reverse
    order after it. Positional arguments are bound to the names of the model's ``forward`` parameters
    first, so ``pre_forward`` always receives ``args == ()`` and finds every input in ``kwargs``
    (``input_ids``, ``attention_mask``, ``cache``, ...).
    """

    def pre_forward(self, model: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        """Return the ``(args, kwargs)`` the model's forward is called with."""
        raise NotImplementedError

    def post_forward(self, model: nn.Module, kwargs: dict, output: Any) -> Any:
        """Return the model's output, changed if need be (e.g. logits of virtual positions removed).
        ``kwargs`` are the keyword arguments the forward ran with. Default: ``output`` unchanged."""
        return output

    def on_detach(self, model: nn.Module) -> None:
        """Undo anything :meth:`pre_forward` or construction changed on the model."""

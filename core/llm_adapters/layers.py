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
exactly the unmerged output.

**Merging.** A layer whose function is a linear change of its module declares ``mergeable = True`` and
implements the method of its kind; the core folds it into the base weight ``W`` (``(out, in)``) and bias
``b``:

=============  ===========================================  ==========================================
kind           the layer implements                         the core folds
=============  ===========================================  ==========================================
``parallel``   ``delta_weight()`` ``(out, in)``,             ``W' = W + dW``, ``b' = b + db``
               ``delta_bias()`` ``(out,)`` or None
``pre``        ``input_map()``: ``(in,)`` or ``(in, in)``   ``W' = W diag(p)`` or ``W' = W P``
``post``       ``output_map()``: ``(out,)`` or              ``W' = diag(q) W`` or ``W' = Q W``,
               ``(out, out)``; ``output_shift()`` or None   ``b' = q * b + t`` (``Q b + t``)
=============  ===========================================  ==========================================

(for a layer on a part of a fused projection, ``out`` is the part's size and only its rows change). A
``pre`` or ``post`` layer merges only together with every other active layer of its module, since folding
it alone would change the composition order. Merge, unmerge and detach cycles return the base tensors bit
for bit (the core keeps a copy of the original while anything is merged).

Other declarations a layer makes (class attributes, read by the core):

* ``uses_base_output``: ``forward`` receives the base module's output (``parallel`` layers only), else None;
* ``delta_uses_base_weight``: the layer reads the live base weight (DoRA's norm); the core then refuses to
  merge another adapter into a module while this one stays active and unmerged there.

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

    #: whether the layer's function is a linear change of its module that the core can fold into the base
    #: weight (then implement the method of its kind: delta_weight / input_map / output_map); the one
    #: source of mergeability: an adapter merges when every layer of it does
    mergeable: ClassVar[bool] = False
    #: ``parallel`` layers: whether ``forward`` needs the base module's output (else it receives None)
    uses_base_output: ClassVar[bool] = False
    #: whether the layer reads the live base weight (DoRA): merging another adapter into its module while it
    #: stays active and unmerged would change its output, so the core refuses that
    delta_uses_base_weight: ClassVar[bool] = False

    def add_delta(self, y: torch.Tensor, x: torch.Tensor, base_output: torch.Tensor | None) -> torch.Tensor:
        """``parallel``: ``y + forward(x, base_output)``, with ``y`` the module output so far (same dtype as the
        layer). The core calls this instead of adding the delta itself; override it where the addition can be
        fused into the layer's last product (LoRA: one ``addmm``)."""
        return y + self(x, base_output)

    def delta_weight(self) -> torch.Tensor:
        """``parallel``: the ``(d_out, d_in)`` change to the base weight equivalent to this layer."""
        raise NotImplementedError(f"{type(self).__name__} declares no weight change (delta_weight)")

    def delta_bias(self) -> torch.Tensor | None:
        """``parallel``: the ``(d_out,)`` change to the base bias, or None (the default) for none."""
        return None

    def input_map(self) -> torch.Tensor:
        """``pre``: the linear map of the module input this layer applies: ``(d_in,)`` per channel
        (``x' = p * x``) or a ``(d_in, d_in)`` matrix (``x' = P x``)."""
        raise NotImplementedError(f"{type(self).__name__} declares no input map (input_map)")

    def output_map(self) -> torch.Tensor:
        """``post``: the linear map of the module output this layer applies: ``(d_out,)`` per channel
        (``y' = q * y + t``) or a ``(d_out, d_out)`` matrix (``y' = Q y + t``)."""
        raise NotImplementedError(f"{type(self).__name__} declares no output map (output_map)")

    def output_shift(self) -> torch.Tensor | None:
        """``post``: the ``(d_out,)`` shift ``t`` added after :meth:`output_map`, or None (the default)."""
        return None


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

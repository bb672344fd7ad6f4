"""The adapter contract: what an adapter plugin provides and what the core gives it.

An adapter plugin provides an :class:`AdapterType` subclass (registered through the
``register_adapters`` hook) with:

* ``name``: the ``type`` key of its configs (``"lora"``);
* ``config_class``: an :class:`AdapterConfig` subclass (pydantic, unknown fields rejected, every field
  described, ranges validated);
* ``default_targets`` / ``default_kind`` or an override of :meth:`AdapterType.placements`: where it goes,
  in roles;
* :meth:`AdapterType.create_layer`: builds one :class:`~llm_adapters.layers.AdapterLayer` for one
  :class:`Site`;
* optionally ``peft_type`` with :meth:`AdapterType.to_peft` / :meth:`AdapterType.from_peft`: the type is then
  saved in HF PEFT's own format (``peft.PeftModel.from_pretrained`` and transformers' ``load_adapter`` read
  it), and directories written by PEFT with that ``peft_type`` load through it (see
  :mod:`llm_adapters.peft_files`).

The core does everything else: resolving targets, wrapping modules, freezing the base, naming, switching,
saving, loading, merging and detaching.

The layer kinds (``pre`` / ``parallel`` / ``post``) and how the core composes them are described in
:mod:`llm_adapters.layers`, which holds the torch modules :class:`~llm_adapters.layers.AdapterLayer` and
:class:`~llm_adapters.layers.ModelAdapter`. Prompt-based methods (prefix / prompt tuning) are *model-level*:
they implement :meth:`AdapterType.create_model_adapter` instead of placements and return a
:class:`~llm_adapters.layers.ModelAdapter`.

This module imports neither torch nor transformers (torch appears in type hints only), so that registering
adapter types, e.g. for ``llm-adapters plugins``, stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    import torch
    from torch import nn

    from .family import AttentionDims, ModelFamily
    from .layers import AdapterLayer, ModelAdapter

Kind = Literal["pre", "parallel", "post"]


def _takes_bool(annotation: Any) -> bool:
    """Whether a field annotation admits a boolean (``bool``, ``bool | None``, ``Any``, a Literal of booleans)."""
    import types
    import typing

    if annotation is bool or annotation is Any:
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_takes_bool(a) for a in typing.get_args(annotation))
    if origin is typing.Literal:
        return any(isinstance(a, bool) for a in typing.get_args(annotation))
    return False


class AdapterConfig(BaseModel):
    """Base class of every adapter config.

    Subclasses set ``type: Literal["<name>"] = "<name>"`` and add their own fields, each with
    ``Field(description=...)`` and validated ranges.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    type: str = Field(description="The adapter type: the name an installed adapter plugin registered.")
    target_modules: list[str] | str | None = Field(
        default=None,
        description=(
            "Where to attach. A list whose entries are roles (attn.q, mlp.down, ... resolved by the model's "
            "family) or module-name suffixes matched on whole path components (q_proj, mlp.down_proj); or a "
            "single string, a regular expression matched against the full module path. Default: the "
            "adapter type's own placement, in roles."
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, data: Any) -> Any:
        """``r: true`` is refused (pydantic would read it as 1): a boolean fits only a field that takes one."""
        if isinstance(data, dict):
            for key, value in data.items():
                info = cls.model_fields.get(key)
                if isinstance(value, bool) and info is not None and not _takes_bool(info.annotation):
                    raise ValueError(f"{key}: expected a number or text, got the boolean {value!r}")
        return data

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        # subclasses narrow `type` to a Literal; keep it described
        field_info = cls.model_fields.get("type")
        if field_info is not None and not field_info.description:
            field_info.description = AdapterConfig.model_fields["type"].description


@dataclass(frozen=True)
class Placement:
    """One place to attach: a role, a module-name suffix or (``regex=True``) a full-path regex.

    ``kind_by_role`` gives another kind to the sites whose module plays one of the listed roles, e.g.
    ``(("mlp.gate", "pre"), ("mlp.up", "pre"))`` (a suffix or regex hit plays the role its path has in the
    model's family, when one is installed); other sites take ``kind``. An ``optional`` placement that the
    model's family does not map, or that matches nothing, is skipped instead of being an error.
    """

    target: str
    kind: Kind
    regex: bool = False
    kind_by_role: tuple[tuple[str, Kind], ...] = ()
    optional: bool = False

    def kind_for(self, role: str | None) -> Kind:
        """The kind of a site playing ``role`` (None: no known role)."""
        for r, k in self.kind_by_role:
            if r == role:
                return k
        return self.kind


@dataclass
class Site:
    """Where one adapter layer sits: handed to :meth:`AdapterType.create_layer`.

    ``in_features`` / ``out_features`` are the sizes the layer sees: for a part of a fused projection,
    ``out_features`` is the size of that part. They are None for modules that are not linear layers
    (a whole block, a norm). ``weight()`` gives the live base weight in ``(out, in)`` layout (transposed
    for GPT-2's ``Conv1D``, only the part's rows for a fused part), for layers whose math needs it, always
    whole and float: gathered when it is sharded (ZeRO-3, FSDP2) and dequantized when bitsandbytes quantized
    it, as a copy in those cases (see :mod:`llm_adapters.engine.base_weights`);
    ``bias()`` the live base bias (``(out,)``, the part's entries for a fused part) or None when the base
    module has none.
    """

    module_path: str
    kind: Kind
    role: str | None
    part: str | None
    in_features: int | None
    out_features: int | None
    dtype: torch.dtype
    device: torch.device
    family: ModelFamily | None = None
    _weight_fn: Any = field(default=None, repr=False)
    _bias_fn: Any = field(default=None, repr=False)

    def weight(self) -> torch.Tensor:
        if self._weight_fn is None:
            raise TypeError(f"{self.module_path} has no weight matrix")
        return self._weight_fn()

    def bias(self) -> torch.Tensor | None:
        return None if self._bias_fn is None else self._bias_fn()

    def features(self, kind: Kind | None = None) -> tuple[int, int]:
        """(d_in, d_out) of the adapter's own function for this kind; errors on non-linear sites."""
        if self.in_features is None or self.out_features is None:
            raise TypeError(f"{self.module_path} is not a Linear or Conv1D layer")
        kind = kind or self.kind
        if kind == "pre":
            return self.in_features, self.in_features
        if kind == "post":
            return self.out_features, self.out_features
        return self.in_features, self.out_features


class AdapterType:
    """Base class of adapter types. See the module docstring for the contract."""

    name: ClassVar[str]
    config_class: ClassVar[type[AdapterConfig]]
    description: ClassVar[str] = ""
    #: roles (or suffixes) used when the config gives no target_modules
    default_targets: ClassVar[tuple[str, ...]] = ()
    default_kind: ClassVar[Kind] = "parallel"
    #: model-level types (prompt-based methods) set this and implement create_model_adapter
    model_level: ClassVar[bool] = False
    #: PEFT's name of the same method (``"LORA"``): set it, and implement to_peft / from_peft, to be saved in
    #: PEFT's format and to read directories PEFT wrote. None: the llm-adapters format.
    peft_type: ClassVar[str | None] = None
    #: PEFT's tensor names of this type outside ``base_model.model.`` (prompt learning's ``prompt_embeddings``)
    peft_tensor_names: ClassVar[frozenset[str]] = frozenset()

    def placements(self, config: AdapterConfig) -> list[Placement]:
        """Where to attach, in order. Default: ``config.target_modules`` or ``default_targets``, all of
        ``default_kind``; a string ``target_modules`` is a regex."""
        targets = config.target_modules
        if isinstance(targets, str):
            return [Placement(targets, self.default_kind, regex=True)]
        return [Placement(t, self.default_kind) for t in (targets or self.default_targets)]

    def create_layer(self, config: AdapterConfig, site: Site) -> AdapterLayer:
        raise NotImplementedError(f"adapter type {self.name!r} does not build module layers")

    def create_model_adapter(self, config: AdapterConfig, model: nn.Module, dims: AttentionDims | None) -> ModelAdapter:
        raise NotImplementedError(f"adapter type {self.name!r} is not model-level")

    def to_peft(
        self, config: AdapterConfig, sites: list[dict[str, Any]], tensors: dict[str, torch.Tensor], model: nn.Module
    ) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """This adapter in PEFT's terms, for saving.

        Args:
            config: the adapter's config.
            sites: one dict per layer, in attachment order: ``module`` (path), ``kind``, ``part`` (None or a
                part of a fused projection), ``role`` and ``slot`` (the middle of the file keys).
            tensors: the adapter's tensors under the llm-adapters file keys (``<module>.<slot>.<param>``).
            model: the model, with the adapter attached (for base weights, fused-part indices, ``Conv1D``).

        Returns:
            PEFT's ``adapter_config.json`` entries of this type (``r``, ``target_modules``, ...; the core adds
            ``peft_type``, ``task_type``, ``base_model_name_or_path``, ``inference_mode`` and its own
            section) and the tensors under PEFT's names (``base_model.model.<module path>.<...>``). Tensors
            that PEFT's form lacks but training needs (say, an encoder whose output is all PEFT stores) may be
            returned under keys starting ``"llm_adapters."``: the core writes them to a file of their own
            beside PEFT's and hands them back to :meth:`from_peft`.
        """
        raise NotImplementedError(f"adapter type {self.name!r} has no PEFT format")

    def from_peft(
        self, peft_config: dict[str, Any], tensors: dict[str, torch.Tensor], model: nn.Module
    ) -> tuple[AdapterConfig, dict[str, torch.Tensor]]:
        """The inverse of :meth:`to_peft`, for loading a PEFT directory onto ``model`` (nothing attached yet).

        ``peft_config`` is the directory's ``adapter_config.json``; when llm-adapters wrote it, it carries the
        section ``"llm_adapters"`` (the original config and targets, ``targets`` listed as in ``sites``), and
        the result must restore exactly that adapter. Returns the config to attach and the tensors under the
        file keys that :func:`~llm_adapters.engine.adapter_tensors` gives after attaching it. Tensors it
        cannot place are returned under their PEFT names (the core then reports them as unexpected); a
        ``ValueError`` says what in the directory does not fit (the core adds the file's name).
        """
        raise NotImplementedError(f"adapter type {self.name!r} has no PEFT format")

"""Building a registered model from a suite entry: parameters checked against the factory,
the harness's arguments given where the factory declares them, plugin errors as one line."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from mmbench.config.params import HARNESS_ARGS, accepted_params, check_params
from mmbench.data.base import ModalitySpec
from mmbench.errors import MMBenchError, first_line
from mmbench.models.base import adapt
from mmbench.registry import MODELS


def create_model(
    name: str, modalities: Sequence[ModalitySpec], n_classes: int, **overrides: Any
) -> nn.Module:
    """Build registered model ``name``; ``None`` overrides are dropped (timm's convention). A
    :class:`FusionModel` comes back as it is, any other module wrapped in a
    :class:`~mmbench.models.calling.PlainModel` that calls it the way its forward declares."""
    return build_model(name, modalities, n_classes, overrides)


def build_model(name: str, modalities: Sequence[ModalitySpec], n_classes: int,
                params: dict[str, Any], label: str | None = None,
                dataset: str = "the dataset") -> nn.Module:
    """:func:`create_model` with the suite's ``label`` and ``dataset`` for one-line errors."""
    entry = MODELS.entry(name)
    what = f"model '{label or name}'"
    kwargs = {k: v for k, v in params.items() if v is not None}
    check_params(entry.obj, kwargs, what, HARNESS_ARGS)
    accepted = accepted_params(entry.obj)
    provided = {"modalities": tuple(modalities), "n_classes": n_classes, "num_classes": n_classes}
    try:
        model = entry.obj(**{k: v for k, v in provided.items() if k in accepted}, **kwargs)
    except MMBenchError:
        raise
    except Exception as exc:  # plugin code: one line naming the model, not a traceback
        raise MMBenchError(f"{what}: building it for {dataset} failed: {type(exc).__name__}: "
                           f"{first_line(exc)}") from None
    return adapt(model, entry.meta, modalities, n_classes, what, dataset)

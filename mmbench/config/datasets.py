"""Loading the datasets a suite names: harness arguments filled in where a loader declares
them, any loader failure (a plugin's too) as one line naming the dataset, NaN/Inf refused."""

from __future__ import annotations

import inspect
from typing import Any

import torch

from mmbench.config.suite import Component, Suite, label_of
from mmbench.data.base import MultimodalDataset
from mmbench.errors import MMBenchError, first_line
from mmbench.registry import DATASETS
from mmbench.text import refusal, slug_clash


def load_datasets(suite: Suite, trust_pickle: bool = False,
                  data_root: str | None = None) -> dict[str, MultimodalDataset]:
    """Load every dataset of the suite (label -> data), on the CPU; NaN/Inf in the data is a
    one-line error naming where. Loaders that declare ``trust_pickle`` / ``data_root`` /
    ``suite_dir`` get the user's ``--trust-pickle`` / ``--data-dir`` and the suite file's folder."""
    out = {}
    for comp in suite.datasets:
        loader = DATASETS.get(comp.name)
        wants = inspect.signature(loader).parameters
        given = {"trust_pickle": trust_pickle, "data_root": data_root, "suite_dir": suite.folder}
        extra = {k: v for k, v in given.items() if k in wants}
        out[label_of(comp)] = _load(loader, comp, extra)
        check_names(out[label_of(comp)], label_of(comp))
        check_finite(out[label_of(comp)], label_of(comp))
    return out


def check_names(data: MultimodalDataset, label: str) -> None:
    """Modality and group names reach terminals, tables and plot file names: no control
    characters, and no two that map to one file name."""
    for what, names in (("modality", data.modality_names), ("group", sorted(data.groups))):
        for name in names:
            problem = refusal(f"dataset '{label}': {what}", str(name))
            if problem:
                raise MMBenchError(problem)
        clash = slug_clash([str(n) for n in names])
        if clash:
            raise MMBenchError(f"dataset '{label}': {what} names '{clash[0]}' and '{clash[1]}' map to the same "
                               "file name; rename one")


def _load(loader: Any, comp: Component, extra: dict[str, Any]) -> MultimodalDataset:
    """Call a (possibly plugin) loader; whatever it raises becomes one line naming the dataset."""
    label = label_of(comp)
    try:
        data = loader(**comp.params, **extra)
    except MMBenchError:
        raise
    except ValueError as exc:
        raise MMBenchError(f"dataset '{label}': {first_line(exc)}") from None
    except Exception as exc:  # plugin code: a missing file, a bad format, ...
        raise MMBenchError(f"dataset '{label}': its loader raised {type(exc).__name__}: {first_line(exc)}; "
                           "check its parameters and files") from None
    if not isinstance(data, MultimodalDataset):
        raise MMBenchError(f"dataset '{label}': its loader returned {type(data).__name__}, not a "
                           "MultimodalDataset (build one with mmbench.make_dataset)")
    return data


def check_finite(data: MultimodalDataset, label: str) -> None:
    """NaN/Inf in the inputs or in regression targets, or class labels outside ``[0, n_classes)``:
    one line naming where."""
    for part, split in data.splits():
        labels = split.labels
        if labels.is_floating_point():
            bad = int((~torch.isfinite(labels)).sum())
            if bad:
                raise MMBenchError(f"dataset '{label}': {bad} NaN/Inf targets in the {part} split; drop "
                                   "those rows or fill the targets")
        elif len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= data.n_classes):
            raise MMBenchError(f"dataset '{label}': labels of the {part} split lie in [{int(labels.min())}, "
                               f"{int(labels.max())}] but the dataset declares {data.n_classes} classes "
                               f"(0 to {data.n_classes - 1}); fix the labels or n_classes")
        for name, x in split.inputs.items():
            bad = int((~torch.isfinite(x)).sum()) if x.is_floating_point() else 0
            if bad:
                raise MMBenchError(f"dataset '{label}': {bad} NaN/Inf values in modality '{name}' "
                                   f"of the {part} split; clean or impute the data first")

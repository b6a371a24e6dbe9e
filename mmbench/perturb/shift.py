"""``shift``: corruptions from the library, per modality and on all modalities, at severities.

Each case applies one registered corruption (``mmbench ls corruptions``) at one severity to one
modality (``target``: its name) or to every modality it supports (``target: all``). Rows:
``family: shift``, ``perturbation`` and ``corruption`` = the corruption, ``severity`` = 0-5,
``draws``. A random corruption is drawn ``draws`` times per row (default 3) and the metrics
average over the draws (the bootstrap resamples rows, keeping each row's draws together); a
deterministic one runs once. The noise depends on the evaluation seed, the draw and the
modality, not on the model, so all models of a suite see the same corrupted inputs (paired
comparisons, corruption errors against a baseline).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from mmbench.bounds import MAX_CASES, check_distinct, check_size
from mmbench.data.base import Batch, ModalitySpec
from mmbench.errors import MMBenchError, did_you_mean
from mmbench.hashing import derive_seed
from mmbench.perturb.base import ALL, Perturbation
from mmbench.perturb.corruptions import SEVERITIES, Corruption
from mmbench.registry import CORRUPTIONS, PERTURBATIONS

EACH = "each"
SHIFT = "shift"


@dataclass(frozen=True)
class Shift(Perturbation):
    """Corruption ``name`` at ``severity`` on the modalities ``specs`` (the targets)."""

    specs: tuple[ModalitySpec, ...] = ()

    def facts(self) -> dict[str, Any]:
        return {"corruption": self.name, "draws": self.draws}

    def apply(self, model: nn.Module, batch: Batch, labels: Tensor, seed: int) -> dict[str, Tensor]:
        corruption: Corruption = CORRUPTIONS.get(self.name)
        out = dict(batch)
        for spec in self.specs:
            out[spec.name] = corruption.apply(batch[spec.name], spec, int(self.severity),
                                              derive_seed(seed, spec.name))
        return out


def _corruptions(corruptions: str | list[str]) -> list[str]:
    if corruptions == "all":
        return CORRUPTIONS.names()
    if not isinstance(corruptions, list):
        raise MMBenchError("shift: 'corruptions' must be 'all' or a list of names "
                           "(see 'mmbench ls corruptions')")
    check_distinct(list(corruptions), "shift: corruptions")
    for name in corruptions:
        CORRUPTIONS.get(name)  # unknown names: one line with a did-you-mean
    return list(corruptions)


def _severities(severities: list[int]) -> list[int]:
    check_distinct(list(severities), "shift: severities")
    for s in severities:
        if isinstance(s, bool) or not isinstance(s, int) or s not in SEVERITIES:
            raise MMBenchError(f"shift: severities must be integers 0-5, got {s!r}")
    return list(severities)


def _targets(corruption: Corruption, specs: Sequence[ModalitySpec], targets: list[str],
             explicit: bool) -> list[tuple[str, tuple[ModalitySpec, ...]]]:
    """(target label, modalities) pairs: ``each`` applicable modality, ``all`` of them, or a
    named one (which must be applicable when the corruption was named explicitly)."""
    names = [s.name for s in specs]
    able = [s for s in specs if corruption.unsupported(s) is None]
    out: list[tuple[str, tuple[ModalitySpec, ...]]] = []
    for t in targets:
        if t == EACH:
            out += [(s.name, (s,)) for s in able]
        elif t == ALL:  # skipped when it would repeat the only 'each' case
            if able and (len(able) > 1 or EACH not in targets):
                out.append((ALL, tuple(able)))
        elif t in names:
            spec = specs[names.index(t)]
            if explicit:
                corruption.check(spec)
            if corruption.unsupported(spec) is None:
                out.append((t, (spec,)))
        else:
            raise MMBenchError(f"shift: unknown target '{t}'{did_you_mean(t, [*names, EACH, ALL])}; "
                               f"use a modality ({', '.join(names)}), '{EACH}' or '{ALL}'")
    return out


@PERTURBATIONS.register("shift", family=SHIFT, kinds=("image", "sequence", "vector", "tokens"),
                        example={"severities": [0, 1, 5], "draws": 2})
def shift(modalities: Sequence[ModalitySpec], n_classes: int, corruptions: str | list[str] = "all",
          severities: list[int] | None = None, targets: list[str] | None = None,
          draws: int = 3) -> list[Perturbation]:
    """Corruptions by modality kind at severities 1-5, per modality and on all modalities;
    random ones averaged over ``draws`` draws."""
    levels = _severities([1, 2, 3, 4, 5] if severities is None else severities)
    if isinstance(draws, bool) or not isinstance(draws, int) or not 1 <= draws <= 100:
        raise MMBenchError(f"shift: draws must be an integer from 1 to 100, got {draws!r}")
    chosen, cases = _corruptions(corruptions), []
    for name in chosen:
        corruption = CORRUPTIONS.get(name)
        pairs = _targets(corruption, modalities, targets or [EACH, ALL], corruptions != "all")
        if not pairs and corruptions != "all":
            kinds = sorted({m.kind.value for m in modalities})
            raise MMBenchError(f"shift: corruption '{name}' applies to {'/'.join(corruption.kinds)} "
                               f"modalities; this dataset has {', '.join(kinds)}")
        times = draws if corruption.random else 1
        check_size(len(cases) + len(pairs) * len(levels), MAX_CASES, "shift: corruptions x severities x targets",
                   "list fewer values")
        cases += [Shift(family=SHIFT, name=name, target=t, severity=float(s), specs=specs,
                        draws=times if s > 0 else 1) for t, specs in pairs for s in levels]
    return cases

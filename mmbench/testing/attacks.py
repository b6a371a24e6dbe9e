"""Which attacks the model contract tests run, and the invariants each must keep.

Each attack runs in the first norm the catalogue lists for it. By default the tests run a
representative set: for every attack mode (``batch``, ``indexed``, ``per_sample``; see
:mod:`mmbench.perturb.attacks`) and every norm attacks of that mode run in, one attack: the one
that applies most widely (no target restriction, no class minimum), then the fastest here. The
environment variable :data:`ENV` selects another set (pytest reads the options of a package
given with ``--pyargs`` too late for a command-line switch):

- ``MMBENCH_CONTRACT_ATTACKS=all``: every attack of the catalogue;
- ``MMBENCH_CONTRACT_ATTACKS=cw,jsma``: the attacks named.
"""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

from mmbench.data.base import MultimodalDataset
from mmbench.errors import MMBenchError
from mmbench.perturb.adversarial import Attack, adversarial
from mmbench.perturb.attacks import CATALOGUE, NORMS, AttackSpec, attack_spec
from mmbench.testing.fitting import EPS, FAST

ENV = "MMBENCH_CONTRACT_ATTACKS"
MODES = ("batch", "indexed", "per_sample")
#: Attacks by the time their contract cases took on the eight built-in models (2 CPU cores),
#: fastest first; an attack not listed ranks after these, by name.
FASTEST = ("pixle", "fgsm", "ffgsm", "nifgsm", "upgd", "pgd", "pgdl2", "deepfool", "bim", "difgsm",
           "mifgsm", "rfgsm", "jitter", "tpgd", "cw", "eotpgd", "apgd", "pgdrsl2", "pgdrs", "spsa",
           "eadl1", "sinifgsm", "eaden", "fab", "square", "vnifgsm", "vmifgsm", "apgdt", "onepixel",
           "jsma", "autoattack_ref", "autoattack", "sparsefool")
#: Rows attacked per case: per-sample attacks run one row at a time, so they get fewer.
ROWS = {"batch": 6, "indexed": 6, "per_sample": 2}

Case = tuple[str, str]  # (attack, norm)


def every_case() -> list[Case]:
    """Every attack of the catalogue, by name."""
    return [(name, CATALOGUE[name].norms[0]) for name in sorted(CATALOGUE)]


def representative() -> list[Case]:
    """One attack per (mode, norm) that attacks of the catalogue run in, in mode then norm order."""
    cases = []
    for mode in MODES:
        for norm in NORMS:
            fits = [s for s in CATALOGUE.values() if s.mode == mode and s.norms[0] == norm]
            if fits:
                cases.append((min(fits, key=_preference).name, norm))
    return cases


def _preference(spec: AttackSpec) -> tuple[bool, bool, int, str]:
    rank = FASTEST.index(spec.name) if spec.name in FASTEST else len(FASTEST)
    return spec.target_check is not None, spec.min_classes > 2, rank, spec.name


def selected(value: str | None = None) -> list[Case]:
    """The cases :data:`ENV` (or ``value``) selects: ``representative`` (the default when
    unset or empty), ``all``, or comma-separated attack names."""
    value = (os.environ.get(ENV, "") if value is None else value).strip().lower()
    if value in ("", "representative"):
        return representative()
    if value == "all":
        return every_case()
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in CATALOGUE]
    if unknown:
        raise MMBenchError(f"{ENV} must be 'representative', 'all' or attack names (mmbench ls attacks); "
                           f"'{unknown[0]}' is none of these")
    return [(name, attack_spec(name).norms[0]) for name in names]


def case_id(case: Case) -> str:
    return f"{case[0]}-{case[1]}"


def attack_cases(attack: str, norm: str, data: MultimodalDataset) -> list[Attack]:
    """The attack in ``norm`` on each continuous modality it can target, and jointly where it
    can; a skip naming why when it fits none."""
    spec = attack_spec(attack)
    fits = [m for m in data.modalities if m.is_continuous
            and (spec.target_check is None or spec.target_check((m,)) is None)]
    targets = [m.name for m in fits]
    if len(fits) > 1 and len(fits) == sum(m.is_continuous for m in data.modalities):
        targets.append("all")
    if not targets:
        why = [spec.target_check((m,)) for m in data.modalities if m.is_continuous and spec.target_check]
        pytest.skip(f"attack '{attack}' fits no modality of this data ({why[0] if why else 'none is continuous'})")
    opts = {attack: FAST[attack]} if attack in FAST else None
    return adversarial(data.modalities, data.n_classes, attacks=[attack], eps=[EPS[norm]], norm=norm,
                       targets=targets, options=opts)  # type: ignore[return-value]


def check_invariants(model: nn.Module, data: MultimodalDataset, attack: str, norm: str) -> None:
    """Non-targets bit-identical, shapes kept, values in bounds, the budget held (also by a
    bounded attack's raw output), and the same seed gives the same result."""
    batch, labels = data.test.rows(slice(0, ROWS[attack_spec(attack).mode]))
    cases = attack_cases(attack, norm, data)
    for case in cases:
        raw = case.raw(model, batch, labels, seed=5)
        out = case.apply(model, batch, labels, seed=5)
        targets = {s.name for s in case.specs}
        for spec in data.modalities:
            if spec.name not in targets:
                assert torch.equal(out[spec.name], batch[spec.name]), (case.name, spec.name)
            else:
                assert out[spec.name].shape == batch[spec.name].shape
                assert float(out[spec.name].min()) >= spec.lo and float(out[spec.name].max()) <= spec.hi
        assert bool((case.distance(batch, out) <= case.severity + 1e-6).all())
        if case.spec.bounded:
            units = {s.name: s.from_unit(s.to_unit(raw[s.name]).clamp(0, 1)) for s in case.specs}
            assert bool((case.distance(batch, units) <= case.severity + 1e-6).all()), case.name
    again = cases[-1].apply(model, batch, labels, seed=5)
    assert all(torch.equal(again[k], out[k]) for k in out), "same seed, different result"

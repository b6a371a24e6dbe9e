"""The torchattacks catalogue: how each attack is built, fed and bounded.

Each :class:`AttackSpec` records the torchattacks class, the norms it can run in, whether it
keeps its perturbation within ``eps`` by itself (``bounded``), and how the harness must feed it a
multimodal batch (``mode``, see :mod:`mmbench.perturb.packing`):

- ``batch``: the attack only evaluates the whole batch (a closure over the other modalities);
- ``indexed``: it evaluates subsets of the batch (APGD, APGD-T, FAB, Square, AutoAttack), so
  rows carry their index as a code the model wrapper decodes;
- ``per_sample``: it may set coordinates to arbitrary values, evaluates populations of one row,
  or works row by row anyway (OnePixel, Pixle, JSMA, SPSA, DeepFool, SparseFool, randomised
  smoothing), so it runs one row at a time.

Budgets are in the normalised unit: Linf / L2 / L1 distances in [0, 1] space, and for L0 the
fraction of target features that may change.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from mmbench.data.base import ModalityKind, ModalitySpec
from mmbench.errors import MMBenchError, did_you_mean
from mmbench.perturb.packing import Layout

NORMS = ("Linf", "L2", "L1", "L0")


@dataclass(frozen=True)
class AttackSpec:
    name: str
    cls: str
    norms: tuple[str, ...]
    bounded: bool
    mode: str = "batch"
    black_box: bool = False
    defaults: dict[str, Any] = field(default_factory=dict)
    #: maps (eps, layout) to constructor arguments: budgets not named ``eps``, shape-dependent sizes
    budget: Callable[[float, Layout], dict[str, Any]] | None = None
    #: extra set-up after construction (e.g. a targeted label map)
    configure: Callable[[Any, int], None] | None = None
    #: returns why a target set is unsupported (None when it is supported)
    target_check: Callable[[tuple[ModalitySpec, ...]], str | None] | None = None
    #: the targeted DLR loss of APGD-T (and so AutoAttack) ranks the top four logits
    min_classes: int = 2
    #: the attack only ascends the cross-entropy of the given labels (no class decisions,
    #: margins or targets), so it attacks a regression or multilabel task's loss as well
    #: (:mod:`mmbench.perturb.objective`)
    any_task: bool = False

    def constructor(self) -> Callable[..., Any]:
        import torchattacks

        return getattr(torchattacks, self.cls)

    def option_names(self) -> list[str]:
        """Constructor options a suite may set (``model`` and harness-set ones excluded)."""
        return list(self.option_defaults())

    def option_defaults(self) -> dict[str, Any]:
        """Option -> its default value (``None`` when it has none): values a suite gives must
        have the default's type (an int option takes an int, a float one a number)."""
        if self.name.startswith("autoattack"):
            return dict(AUTOATTACK_OPTIONS)
        params = inspect.signature(self.constructor()).parameters
        return {n: (p.default if p.default is not p.empty else None) for n, p in params.items()
                if n not in ("self", "model", "eps", "norm", "n_classes", "seed")}


def _single_image(targets: tuple[ModalitySpec, ...]) -> ModalitySpec | None:
    return targets[0] if len(targets) == 1 and targets[0].kind is ModalityKind.IMAGE else None


def _rgb_image(targets: tuple[ModalitySpec, ...]) -> str | None:
    image = _single_image(targets)
    if image is None or image.shape[0] != 3:
        return "it convolves gradients with a 3-channel kernel; target a single 3-channel image"
    return None


def _square_image(targets: tuple[ModalitySpec, ...]) -> str | None:
    image = _single_image(targets)
    if image is None or image.shape[1] != image.shape[2]:
        return ("torchattacks 3.5.1's Pixle swaps x and y when it maps pixels, which breaks on "
                "anything but a single square image; target a square image modality")
    return None


def _onepixel_budget(eps: float, layout: Layout) -> dict[str, Any]:
    _, h, w = layout.base
    return {"pixels": max(1, math.floor(eps * h * w))}


def _jsma_budget(eps: float, layout: Layout) -> dict[str, Any]:
    return {"gamma": eps}


def _next_class_target(attack: Any, n_classes: int) -> None:
    # JSMA's own default, (y + 1) % 10, breaks for datasets with other than ten classes.
    attack.set_mode_targeted_by_function(lambda x, y: (y + 1) % n_classes, quiet=True)


_STEPS = {"steps": 10}
CATALOGUE: dict[str, AttackSpec] = {s.name: s for s in (
    AttackSpec("fgsm", "FGSM", ("Linf",), True, any_task=True),
    AttackSpec("ffgsm", "FFGSM", ("Linf",), True, any_task=True),
    AttackSpec("bim", "BIM", ("Linf",), True, defaults=_STEPS, any_task=True),
    AttackSpec("pgd", "PGD", ("Linf",), True, defaults=_STEPS, any_task=True),
    AttackSpec("pgdl2", "PGDL2", ("L2",), True, defaults=_STEPS, any_task=True),
    AttackSpec("rfgsm", "RFGSM", ("Linf",), True, defaults=_STEPS, any_task=True),
    AttackSpec("mifgsm", "MIFGSM", ("Linf",), True, defaults=_STEPS, any_task=True),
    AttackSpec("nifgsm", "NIFGSM", ("Linf",), True, defaults=_STEPS, any_task=True),
    AttackSpec("sinifgsm", "SINIFGSM", ("Linf",), True, defaults=_STEPS, any_task=True),
    AttackSpec("vmifgsm", "VMIFGSM", ("Linf",), True, defaults=_STEPS, any_task=True),
    AttackSpec("vnifgsm", "VNIFGSM", ("Linf",), True, defaults=_STEPS, any_task=True),
    AttackSpec("tpgd", "TPGD", ("Linf",), True, defaults=_STEPS),
    AttackSpec("eotpgd", "EOTPGD", ("Linf",), True, defaults=_STEPS, any_task=True),
    AttackSpec("upgd", "UPGD", ("Linf",), True, defaults=_STEPS),
    AttackSpec("jitter", "Jitter", ("Linf",), True, defaults=_STEPS),
    AttackSpec("difgsm", "DIFGSM", ("Linf",), True, defaults=_STEPS, any_task=True),
    AttackSpec("tifgsm", "TIFGSM", ("Linf",), True, defaults=_STEPS, target_check=_rgb_image, any_task=True),
    AttackSpec("pgdrs", "PGDRS", ("Linf",), True, "per_sample", defaults=_STEPS),
    AttackSpec("pgdrsl2", "PGDRSL2", ("L2",), True, "per_sample", defaults=_STEPS),
    AttackSpec("cw", "CW", ("L2",), False),
    AttackSpec("eadl1", "EADL1", ("L1",), False),
    AttackSpec("eaden", "EADEN", ("L1",), False),
    # DeepFool divides by the gradient norm: a target the model ignores yields NaN rows, which
    # one-row-at-a-time mode contains (the harness then counts such rows as not fooled).
    AttackSpec("deepfool", "DeepFool", ("L2",), False, "per_sample"),
    AttackSpec("sparsefool", "SparseFool", ("L0",), False, "per_sample"),
    AttackSpec("apgd", "APGD", ("Linf", "L2"), True, "indexed"),
    AttackSpec("apgdt", "APGDT", ("Linf", "L2"), True, "indexed", min_classes=4),
    # torchattacks 3.5.1's FAB has no L1 branch in its final distance check (an UnboundLocalError
    # for every L1 run), so only Linf and L2 are offered
    AttackSpec("fab", "FAB", ("Linf", "L2"), False, "indexed"),
    AttackSpec("square", "Square", ("Linf", "L2"), True, "indexed", black_box=True),
    AttackSpec("spsa", "SPSA", ("Linf",), True, "per_sample", black_box=True),
    AttackSpec("onepixel", "OnePixel", ("L0",), True, "per_sample", black_box=True,
               budget=_onepixel_budget),
    AttackSpec("pixle", "Pixle", ("L0",), False, "per_sample", black_box=True,
               target_check=_square_image),
    # JSMA rounds its feature budget up to pairs of features, so it may exceed gamma slightly.
    AttackSpec("jsma", "JSMA", ("L0",), False, "per_sample", budget=_jsma_budget,
               configure=_next_class_target),
    AttackSpec("autoattack", "AutoAttack", ("Linf", "L2"), True, "indexed", min_classes=4),
    AttackSpec("autoattack_ref", "MultiAttack", ("Linf", "L2"), True, "indexed", min_classes=4),
)}

#: torchattacks classes mmbench does not run, with the reason given to the user.
REFUSED: dict[str, str] = {
    "vanila": "it returns the input unchanged; use the 'clean' perturbation",
    "gn": "it adds random Gaussian noise, not an adversarial perturbation; use the shift family",
    "multiattack": "list several attacks under 'attacks' with 'ensemble: true' instead",
    "lgv": "it trains surrogate models from a training data loader, which a perturbation has not",
    "pifgsm": "it convolves with a fixed 3-channel kernel and ignores eps (uses max_epsilon)",
    "pifgsmpp": "it convolves with a fixed 3-channel kernel and ignores eps (uses max_epsilon)",
}


def attack_spec(name: str) -> AttackSpec:
    key = name.lower()
    if key in REFUSED:
        raise MMBenchError(f"attack '{name}' is not supported: {REFUSED[key]}")
    if key not in CATALOGUE:
        raise MMBenchError(
            f"unknown attack '{name}'{did_you_mean(key, CATALOGUE)}; "
            "run 'mmbench ls attacks' for the list"
        )
    return CATALOGUE[key]


def alpha_for(eps: float, steps: int) -> float:
    """Step size from the budget (2.5 * eps / steps, Madry et al.), not an image default."""
    return 2.5 * eps / max(steps, 1)


def build_attack(spec: AttackSpec, model: nn.Module, eps: float, norm: str, n_classes: int,
                 seed: int, layout: Layout, options: dict[str, Any]) -> Any:
    """Construct the torchattacks object for ``model`` with the harness-set arguments."""
    if spec.name == "autoattack_ref":
        return build_reference_autoattack(model, eps, norm, n_classes, seed, options)
    if spec.name == "autoattack":
        return build_fast_autoattack(model, eps, norm, n_classes, seed, options)
    params = inspect.signature(spec.constructor()).parameters
    kwargs: dict[str, Any] = dict(spec.defaults)
    harness = {"eps": eps, "norm": norm, "n_classes": n_classes, "seed": seed}
    kwargs.update({k: v for k, v in harness.items() if k in params})
    if spec.budget is not None:
        kwargs.update(spec.budget(eps, layout))
    if "alpha" in params and "alpha" not in options:
        kwargs["alpha"] = alpha_for(eps, int(options.get("steps", kwargs.get("steps", 1))))
    kwargs.update(options)
    attack = spec.constructor()(model, **kwargs)
    if spec.configure is not None:
        spec.configure(attack, n_classes)
    return attack


#: Options of the two AutoAttack variants: sub-attack budgets (lower them only for tests).
AUTOATTACK_OPTIONS = {"steps": 100, "n_queries": 5000}


def build_fast_autoattack(model: nn.Module, eps: float, norm: str, n_classes: int, seed: int,
                          options: dict[str, Any]) -> Any:
    """torchattacks' AutoAttack ('standard': APGD-CE, APGD-T, FAB-T with 10 iterations, Square
    with 5000 queries). ``steps`` / ``n_queries`` in ``options`` change those budgets."""
    import torchattacks

    attack = torchattacks.AutoAttack(model, norm=norm, eps=eps, version="standard",
                                     n_classes=n_classes, seed=seed)
    for sub in attack._autoattack.attacks:
        if "steps" in options and hasattr(sub, "steps"):
            sub.steps = int(options["steps"])
        if "n_queries" in options and hasattr(sub, "n_queries"):
            sub.n_queries = int(options["n_queries"])
    return attack


def build_reference_autoattack(model: nn.Module, eps: float, norm: str, n_classes: int, seed: int,
                               options: dict[str, Any]) -> Any:
    """AutoAttack as in Croce & Hein (2020) and RobustBench: APGD-CE and APGD-T with 100
    iterations, FAB-T, Square with 5000 queries, one restart each, targets from ``n_classes``.
    ``options`` may lower ``steps`` / ``n_queries`` (for tests), never change the composition."""
    import torchattacks

    steps = int(options.get("steps", 100))
    n_queries = int(options.get("n_queries", 5000))
    common = {"norm": norm, "eps": eps, "n_restarts": 1}
    return torchattacks.MultiAttack([
        torchattacks.APGD(model, loss="ce", steps=steps, seed=seed, **common),
        torchattacks.APGDT(model, steps=steps, n_classes=n_classes, seed=seed, **common),
        torchattacks.FAB(model, multi_targeted=True, steps=steps, n_classes=n_classes, seed=seed,
                         **common),
        torchattacks.Square(model, n_queries=n_queries, seed=seed, **common),
    ])


def perturbation_norm(delta: torch.Tensor, norm: str) -> torch.Tensor:
    """Per-row size of ``delta`` ([N, F], unit space) in ``norm`` (L0: fraction changed)."""
    if norm == "Linf":
        return delta.abs().amax(dim=1)
    if norm == "L2":
        return delta.norm(dim=1)
    if norm == "L1":
        return delta.abs().sum(dim=1)
    return (delta.abs() > 1e-7).float().mean(dim=1)

"""``adversarial``: PGD adversarial training (Madry et al., 2018) on a target modality set.

Each mini-batch is replaced by PGD adversarial examples against the current model, crafted on
``target`` (a modality, ``a+b`` or ``all`` continuous modalities) with budget ``eps`` (Linf, in
the normalised unit) by the same harness code that evaluates attacks. ``clean_weight`` mixes in
the clean loss (0 is Madry's objective)."""

from __future__ import annotations

from dataclasses import dataclass

from mmbench.data.base import MultimodalDataset
from mmbench.errors import MMBenchError
from mmbench.perturb.adversarial import ADVERSARIAL, Attack, resolve_targets
from mmbench.registry import RECIPES
from mmbench.train.standard import LossFn, StandardConfig, StandardRecipe, criterion, perturbed_loss


@dataclass(frozen=True)
class AdversarialConfig(StandardConfig):
    """Suite parameters of the ``adversarial`` recipe (plus those of ``standard``)."""

    eps: float = 0.05
    steps: int = 5
    alpha: float | None = None  # PGD step size; default 2.5 * eps / steps
    target: str = "all"
    clean_weight: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.eps < 0.5 or self.steps < 1 or not 0 <= self.clean_weight <= 1:
            raise ValueError("need 0 < eps < 0.5, steps >= 1 and 0 <= clean_weight <= 1")


@RECIPES.register("adversarial", description="PGD adversarial training on a target modality set")
class AdversarialRecipe(StandardRecipe):
    config_type = AdversarialConfig
    amp_safe = False  # the PGD attack while training stays in float32

    def check(self, config: AdversarialConfig, data: MultimodalDataset) -> None:
        super().check(config, data)
        self._attack(config, data)

    @staticmethod
    def _attack(config: AdversarialConfig, data: MultimodalDataset) -> Attack:
        (label, specs), *rest = resolve_targets([config.target], data.modalities)
        if rest:
            raise MMBenchError("recipe 'adversarial': 'target' names one modality set, not 'each'")
        options = {"steps": config.steps, "random_start": True}
        if config.alpha is not None:
            options["alpha"] = config.alpha
        return Attack(family=ADVERSARIAL, name="pgd-Linf", target=label, severity=config.eps,
                      attack="pgd", norm="Linf", specs=specs, options=tuple(sorted(options.items())),
                      task=data.task, task_loss=config.regression_loss)

    def loss_fn(self, config: AdversarialConfig, data: MultimodalDataset) -> LossFn:
        return perturbed_loss(self._attack(config, data).apply, config.clean_weight, criterion(config, data))

"""``gaussian_augment``: standard training on inputs with Gaussian noise of scale ``sigma`` (in
the normalised unit, as the ``smoothing`` perturbation adds it) on the ``target`` modalities, so
that the base classifier of a smoothed model is accurate under the noise it will be certified
with (Cohen, Rosenfeld and Kolter, 2019, train with the certification sigma). ``clean_weight``
mixes in the clean loss."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mmbench.data.base import Batch, ModalitySpec, MultimodalDataset
from mmbench.errors import MMBenchError
from mmbench.perturb.adversarial import resolve_targets
from mmbench.perturb.certify import add_noise
from mmbench.registry import RECIPES
from mmbench.train.standard import LossFn, StandardConfig, StandardRecipe, criterion, perturbed_loss


@dataclass(frozen=True)
class GaussianAugmentConfig(StandardConfig):
    """Suite parameters of ``gaussian_augment`` (plus those of ``standard``)."""

    sigma: float = 0.25
    target: str = "all"
    clean_weight: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.sigma <= 10 or not 0 <= self.clean_weight < 1:
            raise ValueError("need 0 < sigma <= 10 and 0 <= clean_weight < 1")


@RECIPES.register("gaussian_augment", description="Gaussian noise augmentation on target modalities "
                  "(base classifiers for randomized smoothing)")
class GaussianAugmentRecipe(StandardRecipe):
    config_type = GaussianAugmentConfig

    def check(self, config: GaussianAugmentConfig, data: MultimodalDataset) -> None:
        super().check(config, data)
        self._targets(config, data)

    @staticmethod
    def _targets(config: GaussianAugmentConfig, data: MultimodalDataset) -> tuple[ModalitySpec, ...]:
        (_, specs), *rest = resolve_targets([config.target], data.modalities, "recipe 'gaussian_augment'",
                                            "Gaussian noise")
        if rest:
            raise MMBenchError("recipe 'gaussian_augment': 'target' names one modality set (a, a+b or all), "
                               "not 'each'")
        return specs

    def loss_fn(self, config: GaussianAugmentConfig, data: MultimodalDataset) -> LossFn:
        specs = self._targets(config, data)

        def noisy(model: nn.Module, batch: Batch, labels: Tensor, seed: int) -> Batch:
            return add_noise(batch, specs, config.sigma, torch.Generator(device=labels.device).manual_seed(seed))

        return perturbed_loss(noisy, config.clean_weight, criterion(config, data))

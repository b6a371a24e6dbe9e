"""Every registered corruption, parametrized from the registry over realistic inputs of each kind
it supports, honours the contract (identity at 0, bounds, seeding, growing with severity, batched),
and the sequence/vector/token corruptions are free of MultiBench's noise-function bugs."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from mmbench.data.base import ModalityKind, ModalitySpec
from mmbench.data.synthetic import make_synthetic
from mmbench.errors import MMBenchError
from mmbench.perturb.corruptions import Corruption
from mmbench.registry import CORRUPTIONS
from mmbench.testing.fitting import ALL_KINDS

#: Built-in corruptions that draw nothing at random: any seed gives the same output.
DETERMINISTIC = {"contrast", "brightness", "gaussian_blur", "defocus_blur", "pixelate"}
SEVERITIES = (1, 2, 3, 4, 5)
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

LARGER_KINDS: list[dict[str, Any]] = [
    {"name": "spec", "kind": "sequence", "shape": [8, 32], "informativeness": 0.8},
    {"name": "photo", "kind": "image", "shape": [1, 16, 15], "informativeness": 0.9},
    {"name": "rgb", "kind": "image", "shape": [3, 12, 12], "informativeness": 0.9},
    {"name": "words", "kind": "tokens", "shape": [12], "informativeness": 0.8, "vocab_size": 50},
]


def _inputs() -> dict[str, tuple[ModalitySpec, torch.Tensor]]:
    """Modality name -> (spec, a batch of 64 rows); one image lives in bounds [-1, 1]."""
    inputs: dict[str, tuple[ModalitySpec, torch.Tensor]] = {}
    for kinds, seed in ((ALL_KINDS, 3), (LARGER_KINDS, 4)):
        data = make_synthetic(modalities=kinds, n_samples=200, n_classes=3, noise=0.8, seed=seed)
        batch, _ = data.train.rows(slice(0, 64))
        inputs.update({s.name: (s, batch[s.name]) for s in data.modalities})
    spec, img = inputs["img"]
    inputs["img_pm1"] = (ModalitySpec("img_pm1", spec.kind, spec.shape, -1.0, 1.0), img * 2 - 1)
    return inputs


INPUTS = _inputs()
CASES = [pytest.param(name, mod, id=f"{name}-{mod}") for name in CORRUPTIONS.names()
         for mod, (spec, _) in INPUTS.items() if CORRUPTIONS.get(name).unsupported(spec) is None]
SEQUENCE_CASES = [c for c in CASES if INPUTS[c.values[1]][0].kind is ModalityKind.SEQUENCE]


def _case(name: str, mod: str) -> tuple[Corruption, ModalitySpec, torch.Tensor]:
    return (CORRUPTIONS.get(name), *INPUTS[mod])


def _smooth(x: torch.Tensor, sigma: float, dim: int) -> torch.Tensor:
    """Gaussian smoothing of ``x`` along ``dim`` (replicate padding)."""
    r = math.ceil(3 * sigma)
    k = torch.exp(-0.5 * (torch.arange(-r, r + 1.0) / sigma) ** 2)
    moved = x.movedim(dim, -1)
    rows = F.pad(moved.reshape(-1, 1, moved.shape[-1]), (r, r), mode="replicate")
    return F.conv1d(rows, (k / k.sum())[None, None]).reshape(moved.shape).movedim(-1, dim)


def _natural(spec: ModalitySpec, x: torch.Tensor) -> torch.Tensor:
    """``x`` made spatially / temporally correlated like real images and audio, in [0.2, 0.8] of
    the unit. The synthetic pixels and time steps are independent projections, on which e.g.
    blurring 8x8 images by a larger disk or shifting by one more step need not move further."""
    if spec.kind not in (ModalityKind.IMAGE, ModalityKind.SEQUENCE):
        return x
    u = _smooth(spec.to_unit(x), 1.0, -1)
    u = _smooth(u, 1.0, -2) if spec.kind is ModalityKind.IMAGE else u
    return spec.from_unit(0.2 + 0.6 * (u - u.min()) / (u.max() - u.min()))


def _distance(x: torch.Tensor, y: torch.Tensor, spec: ModalitySpec) -> float:
    """Fraction of changed tokens, or mean absolute difference in the unit."""
    if not spec.is_continuous:
        return float((x != y).float().mean())
    return float((spec.to_unit(y.float()) - spec.to_unit(x.float())).abs().mean())


def test_every_corruption_runs_on_some_test_input() -> None:
    assert sorted({c.values[0] for c in CASES}) == CORRUPTIONS.names()


@pytest.mark.parametrize(("name", "mod"), CASES)
def test_severity_zero_is_the_identity(name: str, mod: str) -> None:
    corruption, spec, x = _case(name, mod)
    assert torch.equal(corruption.apply(x, spec, 0, seed=1), x)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("name", "mod"), CASES)
def test_output_keeps_shape_dtype_device_and_bounds(name: str, mod: str, device: str) -> None:
    corruption, spec, x = _case(name, mod)
    x = x.to(device)
    for severity in SEVERITIES:
        y = corruption.apply(x, spec, severity, seed=severity)
        assert (y.shape, y.dtype, y.device) == (x.shape, x.dtype, x.device)
        assert float(y.min()) >= spec.lo and float(y.max()) <= spec.hi, f"severity {severity}"


@pytest.mark.parametrize(("name", "mod"), CASES)
def test_same_seed_repeats_and_other_seed_differs(name: str, mod: str) -> None:
    corruption, spec, x = _case(name, mod)
    first, again = (corruption.apply(x, spec, 3, seed=7) for _ in range(2))
    other = corruption.apply(x, spec, 3, seed=8)
    assert torch.equal(first, again)
    assert torch.equal(first, other) == (name in DETERMINISTIC)


@pytest.mark.parametrize(("name", "mod"), CASES)
def test_distance_to_clean_grows_with_severity(name: str, mod: str) -> None:
    corruption, spec, x = _case(name, mod)
    x = _natural(spec, x)
    dist = [sum(_distance(x, corruption.apply(x, spec, s, seed=seed), spec) for seed in (0, 1, 2))
            / 3 for s in SEVERITIES]
    assert all(b >= a - 1e-6 for a, b in zip(dist, dist[1:], strict=False)), dist
    assert dist[-1] > dist[0], dist


class _CountCalls(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        self.calls += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize(("name", "mod"), CASES)
def test_torch_calls_do_not_grow_with_batch_size(name: str, mod: str) -> None:
    corruption, spec, x = _case(name, mod)
    counts = []
    for rows in (4, 64):
        with _CountCalls() as counter:
            corruption.apply(x[:rows], spec, 3, seed=0)
        counts.append(counter.calls)
    assert counts[0] == counts[1], f"{counts}: a Python loop over samples?"


GENERIC_SPECS = {
    "image": ModalitySpec("pic", ModalityKind.IMAGE, (1, 8, 8)),
    "sequence": ModalitySpec("wave", ModalityKind.SEQUENCE, (8, 32)),
    "vector": ModalitySpec("table", ModalityKind.VECTOR, (10,)),
    "tokens": ModalitySpec("text", ModalityKind.TOKENS, (6,), 0.0, 11.0),
}


@pytest.mark.parametrize("name", CORRUPTIONS.names())
def test_other_kinds_are_refused_with_a_one_line_reason(name: str) -> None:
    corruption = CORRUPTIONS.get(name)
    for kind, spec in GENERIC_SPECS.items():
        if kind in corruption.kinds:
            continue
        reason = corruption.unsupported(spec)
        assert reason and "\n" not in reason and name in reason and spec.name in reason
        with pytest.raises(MMBenchError, match=f"^{re.escape(reason)}$"):
            corruption.check(spec)


@pytest.mark.parametrize(("name", "mod"), CASES)
def test_severity_outside_0_to_5_is_refused(name: str, mod: str) -> None:
    corruption, spec, x = _case(name, mod)
    for severity in (6, -1):
        with pytest.raises(MMBenchError, match="severity must be 0-5"):
            corruption.apply(x, spec, severity, seed=0)


def test_freq_mask_needs_four_frequency_bins() -> None:
    spec = INPUTS["aud"][0]
    message = ("corruption 'freq_mask' needs spectrogram-like input with at least 4 channels "
               "(frequency bins); 'aud' has 2")
    assert CORRUPTIONS.get("freq_mask").unsupported(spec) == message
    with pytest.raises(MMBenchError, match=re.escape(message)):
        CORRUPTIONS.get("freq_mask").check(spec)


# -- MultiBench regressions ----------------------------------------------------------------------
@pytest.mark.parametrize(("name", "mod"), SEQUENCE_CASES)
def test_sequence_corruption_never_blanks_a_whole_sample(name: str, mod: str) -> None:
    """MultiBench's add_audio_noise started from zeros, so unselected samples came back blank."""
    corruption, spec, x = _case(name, mod)
    y = corruption.apply(x, spec, 1, seed=0)
    blank = (y == 0).flatten(1).all(1) & (x != 0).flatten(1).any(1)
    assert not blank.any()


def test_random_dropout_leaves_most_entries_unchanged() -> None:
    corruption, spec, x = _case("random_dropout", "spec")
    assert x.shape == (64, 8, 32)
    unchanged = float((corruption.apply(x, spec, 1, seed=0) == x).float().mean())
    assert abs(unchanged - (1 - corruption.levels[0])) < 0.05


def test_random_dropout_drops_its_probability() -> None:
    """MultiBench's audio_random_dropout swapped the probability and the step."""
    corruption, spec = CORRUPTIONS.get("random_dropout"), INPUTS["spec"][0]
    x = 0.2 + 0.6 * torch.rand(512, *spec.shape, generator=torch.Generator().manual_seed(0))
    for severity, p in zip(SEVERITIES, corruption.levels, strict=True):
        dropped = float((corruption.apply(x, spec, severity, seed=severity) == 0).float().mean())
        assert abs(dropped - p) < 0.03, (severity, p, dropped)


def test_structured_dropout_drops_runs_of_whole_time_steps() -> None:
    corruption, spec, x = _case("structured_dropout", "spec")
    block, fractions = spec.shape[1] // 8, []
    for severity, p in zip(SEVERITIES, corruption.levels, strict=True):
        zero = corruption.apply(x, spec, severity, seed=severity) == 0
        dropped = zero.all(1)  # [N, T]: time steps with every channel zero
        assert torch.equal(zero.any(1), dropped), "a time step was dropped in some channels only"
        starts = dropped & ~F.pad(dropped, (1, 0))[:, :-1]
        for k in range(block):  # every run is at least `block` long unless it hits the end
            assert (~starts[:, : dropped.shape[1] - k] | dropped[:, k:]).all()
        fractions.append(float(dropped.float().mean()))
        assert 0.6 * p <= fractions[-1] <= p + 0.02, (p, fractions[-1])
    assert fractions == sorted(fractions)


@pytest.mark.parametrize(("name", "mod"), [("neighbour_swap", "tab"), ("token_swap", "words")])
def test_swaps_permute_adjacent_pairs_without_duplicating(name: str, mod: str) -> None:
    """MultiBench's swap_entry copied a neighbour over an entry instead of swapping the two."""
    corruption, spec, _ = _case(name, mod)
    x = torch.rand(256, *spec.shape, generator=torch.Generator().manual_seed(0)).argsort(1) + 1
    x = x if not spec.is_continuous else x / (spec.shape[0] + 1)  # distinct values per row
    pos = torch.arange(spec.shape[0])
    for severity in (1, 5):
        y = corruption.apply(x, spec, severity, seed=severity)
        assert torch.equal(y.sort(1).values, x.sort(1).values)
        src = (y[:, :, None] == x[:, None, :]).int().argmax(2)  # where each output value came from
        assert (src - pos).abs().max() <= 1 and torch.equal(src.gather(1, src), pos.expand_as(src))
        moved_right = src[:, :-1] == pos[1:]  # pair (j, j + 1) swapped
        assert moved_right[:, 0::2].any() and moved_right[:, 1::2].any(), "both pair parities"


def test_time_shift_moves_each_sample_left_or_right_and_zero_fills() -> None:
    corruption, spec, x = _case("time_shift", "spec")
    steps = max(1, round(corruption.levels[2] * spec.shape[1]))
    y = corruption.apply(x, spec, 3, seed=0)
    right = F.pad(x, (steps, 0))[..., : spec.shape[1]]  # not circular: vacated steps are 0
    left = F.pad(x, (0, steps))[..., steps:]
    is_right, is_left = ((y == right).flatten(1).all(1), (y == left).flatten(1).all(1))
    assert (is_right | is_left).all() and is_right.any() and is_left.any()


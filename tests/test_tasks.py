"""Regression and multilabel tasks end to end (issue 26): the user's own ``.npz`` with float targets
and one with [N, K] 0/1 labels run every family in one suite through the CLI (each dataset read
by its task's metrics and score metric) and through ``mmbench.evaluate``, with intervals on
every metric; attacks maximise the task's loss (FGSM equals a plain torch closure on the L1
loss); attacks and certificates that need class decisions are refused at planning; a
lower-is-better score metric ranks every board the right way round."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import mmbench
from mmbench.data.arrays import make_dataset
from mmbench.data.synthetic import make_synthetic
from mmbench.data.tasks import MULTILABEL, REGRESSION, row_loss
from mmbench.errors import MMBenchError
from mmbench.perturb.adversarial import adversarial
from conftest import run_cli, write_suite

N = 240


def _inputs(seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """An image and a vector that both carry a latent signal, plus a group column."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(N, 3))
    image = (z[:, :1, None, None] + 0.3 * rng.normal(size=(N, 1, 6, 6))).astype(np.float32)
    table = (z @ rng.normal(size=(3, 8)) + 0.3 * rng.normal(size=(N, 8))).astype(np.float32)
    return {"image": image, "table": table, "region": np.where(z[:, 2] > 1.0, "far", "near")}, z


def _npz(folder: Path, task: str) -> Path:
    arrays, z = _inputs(0 if task == REGRESSION else 1)
    if task == REGRESSION:
        target = np.stack([np.tanh(z[:, 0] + z[:, 1]) * 3, z[:, 1]], axis=1).astype(np.float32)
    else:
        target = (z[:, [0, 1, 0]] + np.array([0.0, 0.5, -0.8]) > 0).astype(np.int64)
    path = folder / f"{task}.npz"
    np.savez(path, **arrays, target=target)
    return path


PERTURBATIONS = [
    "clean",
    {"name": "adversarial", "params": {"attacks": ["fgsm", "pgd"], "eps": [0.05, 0.15], "ensemble": True,
                                       "options": {"pgd": {"steps": 3}}}},
    "missing",
    {"name": "random_dropout", "params": {"rates": [0.3, 0.6]}},
    {"name": "shift", "params": {"corruptions": ["gaussian_noise"], "severities": [2]}},
    "natural_shift",
    {"name": "missing_then_attack", "params": {"attacks": ["fgsm"], "eps": [0.05], "missing": ["image"]}},
]
METRICS = {REGRESSION: ["mae", "rmse", "pearson", "acc2_has0", "acc2_non0", "f1_has0", "f1_non0", "acc7"],
           MULTILABEL: ["micro_f1", "macro_f1", "samples_f1", "map", "subset_accuracy", "hamming_loss"]}


def _dataset(path: Path, task: str) -> dict:
    return {"name": "arrays", "label": task, "params": {
            "path": str(path), "modalities": {"image": "image", "table": "vector"}, "label": "target",
            "groups": "region", "in_distribution": "near", "task": task}}


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One CLI run of one suite holding a regression and a multilabel dataset (each scored by
    its task's metric: mae, the suite's score metric, micro_f1, the first multilabel one, and
    accuracy for a classification beside them)."""
    folder = tmp_path_factory.mktemp("tasks")
    classification = {"name": "synthetic", "label": "classification", "params": {"n_samples": 200, "ood_shift": 1.0}}
    suite = {"name": "tasks_both", "datasets": [*(_dataset(_npz(folder, task), task) for task in METRICS),
                                                classification],
             "models": ["late_fusion", "early_fusion"],
             "recipes": [{"name": "standard", "params": {"epochs": 8, "batch_size": 32}}],
             "perturbations": PERTURBATIONS, "metrics": [*METRICS[REGRESSION], *METRICS[MULTILABEL], "accuracy"],
             "score_metric": "mae", "seeds": [0]}
    done = run_cli("run", str(write_suite(folder, suite)), "--out", str(folder / "out"),
                   "--cache-dir", str(folder / "cache"))
    assert done.returncode == 0, done.stderr[-2000:]
    return folder / "out"


@pytest.fixture(params=[REGRESSION, MULTILABEL])
def run(request: pytest.FixtureRequest, both: Path) -> tuple[str, Path]:
    """The task whose dataset a test reads, and the results folder."""
    return request.param, both


def test_every_family_runs_with_intervals_on_every_metric(run: tuple[str, Path]) -> None:
    task, out = run
    frame = pd.read_csv(out / "results.csv")
    frame = frame[frame["dataset"] == task]
    assert {"clean", "adversarial", "missing", "random_dropout", "shift", "natural_shift",
            "compound"} <= set(frame["family"])
    assert set(frame["metric"]) == set(METRICS[task])  # each dataset gets its own task's metrics only
    attacked = frame[frame["family"] == "adversarial"]
    assert {"image", "table", "all"} <= set(attacked["target"])  # per modality and jointly
    assert set(attacked["loss"]) == {"L1 (mean absolute error)" if task == REGRESSION else "binary cross-entropy"}
    finite = frame[["ci_low", "ci_high"]].notna().all(axis=1)
    assert finite.mean() > 0.97, frame[~finite][["family", "perturbation", "metric", "value"]].head()
    inside = (frame["ci_low"] <= frame["value"] + 1e-9) & (frame["value"] <= frame["ci_high"] + 1e-9)
    assert inside[finite].all()


def test_a_classification_dataset_beside_them_is_read_as_before(both: Path) -> None:
    frame = pd.read_csv(both / "results.csv")
    assert set(frame.loc[frame["dataset"] == "classification", "metric"]) == {"accuracy", "macro_f1"}  # both serve it
    board = (both / "LEADERBOARD.md").read_text()
    # scored by the first listed metric of its task (macro_f1 comes before accuracy in the list)
    assert "## classification: main board, scores of macro_f1" in board
    assert "classification: certified against k corrupted modalities (subset vote" in board  # classification only
    assert "regression: certified" not in board
    assert board.count("Sanity checks:") == 1


def test_attacks_make_the_task_worse_and_boards_rank_by_direction(run: tuple[str, Path]) -> None:
    task, out = run
    frame = pd.read_csv(out / "results.csv")
    frame = frame[frame["dataset"] == task]
    score = METRICS[task][0]
    lower = task == REGRESSION  # mae: lower is better; micro_f1: higher
    rows = frame[(frame["metric"] == score) & (frame["split"] == "test") & (frame["rows"] == 0)]
    clean = rows[rows["family"] == "clean"].set_index("model")["value"]
    joint = rows[(rows["family"] == "adversarial") & (rows["target"] == "all") & (rows["severity"] == 0.15)]
    worst = joint.groupby("model")["value"].max() if lower else joint.groupby("model")["value"].min()
    sign = -1.0 if lower else 1.0  # an attack never makes the task better, and hurts a model that learned
    assert (sign * worst <= sign * clean[worst.index] + 1e-12).all(), (worst, clean)
    assert (sign * worst < sign * clean[worst.index]).any(), (worst, clean)
    scores = pd.read_csv(out / "scores.csv")
    composite = scores[(scores["score"] == "composite") & (scores["dataset"] == task)].set_index("model")["value"]
    board = (out / "LEADERBOARD.md").read_text()
    assert f"## {task}: main board, scores of {score}" in board
    first = board.split(f"## {task}: main board")[1].split("\n| 1 ")[1].split("|")[1].strip().split(" [")[0]
    assert first == (composite.idxmin() if lower else composite.idxmax())
    assert "(constant)" in board and "Sanity checks" in board


def _regression_references(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """MultiBench's / MMSA's affect protocol, from scikit-learn and scipy (first target column)."""
    from scipy.stats import pearsonr
    from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, mean_squared_error

    t, q = y[:, 0], p[:, 0]
    keep = t != 0
    return {"mae": mean_absolute_error(y, p), "rmse": float(np.sqrt(mean_squared_error(y, p))),
            "pearson": float(np.mean([pearsonr(y[:, j], p[:, j])[0] for j in range(y.shape[1])])),
            "acc2_has0": accuracy_score(t >= 0, q >= 0), "f1_has0": f1_score(t >= 0, q >= 0, average="weighted"),
            "acc2_non0": accuracy_score(t[keep] > 0, q[keep] > 0),
            "f1_non0": f1_score(t[keep] > 0, q[keep] > 0, average="weighted"),
            "acc7": float(np.mean(np.clip(np.round(t), -3, 3) == np.clip(np.round(q), -3, 3)))}


def _multilabel_references(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, average_precision_score, f1_score, hamming_loss

    hard = p >= 0.5
    present = y.sum(axis=0) > 0
    return {"micro_f1": f1_score(y, hard, average="micro"), "macro_f1": f1_score(y, hard, average="macro"),
            "samples_f1": f1_score(y, hard, average="samples", zero_division=0),
            "map": average_precision_score(y[:, present], p[:, present], average="macro"),
            "subset_accuracy": accuracy_score(y, hard), "hamming_loss": hamming_loss(y, hard)}


def test_stored_outcomes_recompute_with_sklearn(run: tuple[str, Path]) -> None:
    """Every published metric of clean and attacked cells, recomputed by scikit-learn / scipy
    from the per-row outputs and targets the store kept."""
    task, out = run
    frame = pd.read_csv(out / "results.csv")
    reference = _regression_references if task == REGRESSION else _multilabel_references
    for family in ("clean", "adversarial"):
        rows = mmbench.outcomes(out, dataset=task, model="early_fusion", family=family)
        for cell, group in rows.groupby("cell"):
            first = group.iloc[0]
            published = frame[(frame["dataset"] == task) & (frame["family"] == family) & (frame["model"] == "early_fusion")
                              & (frame["perturbation"] == first["perturbation"]) & (frame["target"] == first["target"])
                              & (frame["severity"] == first["severity"]) & (frame["rows"] == first["rows"])]
            value = published.set_index("metric")["value"]
            expected = reference(np.stack(group["truth"].to_numpy()), np.stack(group["output"].to_numpy()))
            for metric, number in expected.items():
                assert value[metric] == pytest.approx(number, abs=1e-6), (cell, metric)


class Regressor(nn.Module):
    """A plain module returning one value per row ([N]), as users write regressors."""

    def __init__(self) -> None:
        super().__init__()
        self.image = nn.Linear(36, 8)
        self.table = nn.Linear(8, 8)
        self.head = nn.Linear(16, 1)

    def forward(self, image: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        h = torch.cat([torch.tanh(self.image(image.flatten(1))), torch.tanh(self.table(table))], dim=1)
        return self.head(h).squeeze(1)


def _regression_data() -> mmbench.MultimodalDataset:
    arrays, z = _inputs(2)
    target = (np.tanh(z[:, 0] - z[:, 1]) * 3).astype(np.float32)
    return make_dataset({k: arrays[k] for k in ("image", "table")}, {"image": "image", "table": "vector"},
                        target, task=REGRESSION, name="plain_reg")


def test_fgsm_on_regression_is_a_sign_step_on_the_l1_loss() -> None:
    data = _regression_data()
    torch.manual_seed(0)
    model = Regressor()
    specs = [s for s in data.modalities if s.name == "table"]
    case = adversarial(data.modalities, 1, attacks=["fgsm"], eps=[0.1], targets=["table"], task=REGRESSION)[0]
    from mmbench.models.calling import PlainModel, derive_call

    wrapped = PlainModel(model, data.modalities, 1, derive_call(model.forward, data.modality_names)).eval()
    batch, labels = data.test.rows(slice(0, 32))
    got = case.apply(wrapped, batch, labels, seed=0)["table"]
    x = batch["table"].clone().requires_grad_(True)  # [0, 1] already (minmax), so unit = data
    row_loss(REGRESSION, model(batch["image"], x), labels).mean().backward()
    expected = (batch["table"] + 0.1 * x.grad.sign()).clamp(specs[0].lo, specs[0].hi)
    assert torch.allclose(got, expected, atol=1e-6)
    assert torch.equal(case.apply(wrapped, batch, labels, seed=0)["image"], batch["image"])


def _fitted(model: nn.Module, data: mmbench.MultimodalDataset) -> nn.Module:
    """``model`` (forward(image, table)) trained on the whole training split with its task's loss."""
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        optimiser.zero_grad()
        row_loss(data.task, model(data.train.inputs["image"], data.train.inputs["table"]),
                 data.train.labels).mean().backward()
        optimiser.step()
    return model


def test_evaluate_a_plain_regressor_with_every_regression_metric() -> None:
    data = _regression_data()
    torch.manual_seed(0)
    model = _fitted(Regressor(), data)
    result = mmbench.evaluate(model, data, ["clean", {"name": "adversarial", "params": {"attacks": ["pgd"],
                              "eps": [0.1], "options": {"pgd": {"steps": 3}}}}],
                              metrics=METRICS[REGRESSION], score_metric="mae")
    clean = result.frame[result.frame["family"] == "clean"].set_index("metric")["value"]
    assert clean["pearson"] > 0.5 and clean["acc2_has0"] > 0.6
    attacked = result.frame[(result.frame["family"] == "adversarial") & (result.frame["metric"] == "mae")]
    assert (attacked["value"] > clean["mae"]).all()


class Tagger(nn.Module):
    """A plain module returning one logit per label ([N, K])."""

    def __init__(self, labels: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(36 + 8, 16), nn.Tanh(), nn.Linear(16, labels))

    def forward(self, image: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([image.flatten(1), table], dim=1))


def test_evaluate_a_plain_multilabel_model_with_every_multilabel_metric() -> None:
    arrays, z = _inputs(4)
    labels = (z[:, [0, 1, 2]] + np.array([0.0, 0.5, -0.5]) > 0).astype(np.int64)
    data = make_dataset({k: arrays[k] for k in ("image", "table")}, {"image": "image", "table": "vector"},
                        labels, task=MULTILABEL, name="plain_ml")
    torch.manual_seed(0)
    model = _fitted(Tagger(3), data)
    result = mmbench.evaluate(model, data, ["clean", {"name": "adversarial", "params": {"attacks": ["fgsm"],
                              "eps": [0.2]}}], metrics=METRICS[MULTILABEL], score_metric="micro_f1")
    frame = result.frame
    assert set(frame["metric"]) == set(METRICS[MULTILABEL]) and frame["ci_low"].notna().all()
    clean = frame[frame["family"] == "clean"].set_index("metric")["value"]
    assert clean["micro_f1"] > 0.6 and clean["hamming_loss"] < 0.3
    attacked = frame[(frame["family"] == "adversarial") & (frame["metric"] == "hamming_loss")]
    assert (attacked["value"] > clean["hamming_loss"]).all()


@pytest.mark.parametrize(("perturbation", "fragment"), [
    ({"name": "adversarial", "params": {"attacks": ["deepfool"], "eps": [0.1]}}, "attack 'deepfool'"),
    ({"name": "adversarial", "params": {"attacks": ["apgd"], "eps": [0.1]}}, "attack 'apgd'"),
    ({"name": "smoothing", "params": {"sigma": [0.25]}}, "randomized smoothing"),
])
def test_class_decision_threats_are_refused_for_other_tasks(perturbation: dict, fragment: str) -> None:
    data = make_synthetic(task=REGRESSION, n_samples=100)
    with pytest.raises(MMBenchError, match=fragment) as info:
        mmbench.validate({"name": "refused", "datasets": [{"name": "synthetic", "params": {
            "task": "regression", "n_samples": 100}}], "models": ["late_fusion"],
            "perturbations": [perturbation], "metrics": ["mae"], "score_metric": "mae"})
    assert "regression" in str(info.value) and "\n" not in str(info.value)
    assert data.task == REGRESSION


@pytest.mark.parametrize(("change", "fragment"), [
    ({"metrics": ["accuracy"], "score_metric": "accuracy"}, "no metric of the suite is defined for the regression"),
    ({"recipes": [{"name": "standard", "params": {"class_weights": "balanced"}}]}, "class_weights"),
])
def test_classification_settings_are_refused_for_regression(change: dict, fragment: str) -> None:
    suite = {"name": "refused", "datasets": [{"name": "synthetic", "params": {"task": "regression",
             "n_samples": 100}}], "models": ["late_fusion"], "metrics": ["mae"], "score_metric": "mae", **change}
    with pytest.raises(MMBenchError, match=fragment):
        mmbench.validate(suite)


@pytest.mark.parametrize(("labels", "fragment"), [
    (np.full(N, 1.5), "one value"),
    (np.where(np.arange(N) % 2, 1, 2).reshape(-1, 1).repeat(3, axis=1), "must be 0 or 1"),
    (np.arange(N) % 2, "expected 0/1 labels \\[N, K\\]"),
])
def test_bad_task_labels_are_one_line_errors(labels: np.ndarray, fragment: str) -> None:
    arrays, _ = _inputs(3)
    task = REGRESSION if labels.dtype.kind == "f" else MULTILABEL
    with pytest.raises(MMBenchError, match=fragment):
        make_dataset({"table": arrays["table"]}, {"table": "vector"}, labels, task=task)


def test_synthetic_tasks_keep_the_inputs_and_carry_a_signal() -> None:
    base = make_synthetic(n_samples=300)
    for task, width in ((REGRESSION, 2), (MULTILABEL, 4)):
        data = make_synthetic(n_samples=300, task=task, outputs=width)
        assert data.task == task and data.n_classes == width and data.train.labels.shape[1] == width
        assert all(torch.equal(base.train.inputs[k], data.train.inputs[k]) for k in base.modality_names)
        x = data.train.inputs["table"].numpy()
        y = data.train.labels.numpy()
        fit = np.linalg.lstsq(np.c_[x, np.ones(len(x))], y, rcond=None)[0]
        residual = y - np.c_[x, np.ones(len(x))] @ fit
        assert (residual.var(axis=0) < 0.8 * y.var(axis=0)).all()  # the table alone explains a share


def _ranked_tables(board: str, dataset: str) -> dict[str, pd.DataFrame]:
    """Heading -> the table under it, for every board of ``dataset`` with a rank column (cells as
    text; model rows only)."""
    out = {}
    for section in board.split("\n## ")[1:]:
        heading, _, body = section.partition("\n")
        lines = [line for line in body.splitlines() if line.startswith("|")]
        if not heading.startswith(f"{dataset}") or not lines or "rank" not in lines[0]:
            continue
        head = [c.strip() for c in lines[0].strip("|").split("|")]
        rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
        table = pd.DataFrame(rows, columns=head)
        out[heading] = table[table["rank"].str.isdigit()].assign(rank=lambda t: t["rank"].astype(int))
    return out


def _number(cell: str) -> float:
    return float(cell.split()[0]) if cell and cell != "-" else float("nan")


def test_every_ranked_board_ranks_in_the_score_metrics_direction(both: Path) -> None:
    """MAE (lower is better) and micro-F1 (higher): on every board with a rank, rank 1 holds the
    best value of what the board ranks by, and values only get worse down the ranks."""
    board = (both / "LEADERBOARD.md").read_text()
    for task, metric in ((REGRESSION, "mae"), (MULTILABEL, "micro_f1")):
        sign = -1.0 if task == REGRESSION else 1.0
        tables = _ranked_tables(board, task)
        assert len(tables) >= 5, sorted(tables)
        for heading, table in tables.items():
            numeric = table.drop(columns=["rank", "model", "recipe"]).map(_number)
            by = {"main board": "composite", "(clean": metric, "corruptions": f"corrupted {metric}",
                  "compound": "worst compound", "robust": None}
            key = next((k for k in by if k in heading), "")
            assert key, f"no ranking rule known for board {heading!r}"
            values = numeric.mean(axis=1) if by[key] is None else numeric[by[key]]
            ordered = values[table["rank"].sort_values().index].to_numpy()
            assert (sign * np.diff(ordered) <= 1e-9).all(), (heading, ordered)

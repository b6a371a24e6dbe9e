"""The smoke suite on real mfeat data: the README's main job, checked end to end."""

from __future__ import annotations

from pathlib import Path

from mmbench.runner import RunOptions, run_suite

REPO = Path(__file__).resolve().parents[1]


def test_smoke_suite_trains_real_models_then_resumes_and_serves_from_cache(tmp_path: Path) -> None:
    opts = RunOptions(out_dir=tmp_path / "out", cache_dir=tmp_path / "cache", progress=False)
    cold = run_suite(REPO / "suites" / "smoke.yaml", opts)
    acc = cold.frame[cold.frame["metric"] == "accuracy"].set_index("model")["value"]
    assert {"seed_concat", "late_fusion"} <= set(acc.index) and len(acc) >= 4
    assert acc["late_fusion"] >= 0.95, acc.to_dict()
    assert (acc > 0.9).all(), acc.to_dict()
    assert "## mfeat" in cold.leaderboard and "late_fusion" in cold.leaderboard
    resumed = run_suite(REPO / "suites" / "smoke.yaml", opts)  # every cell is in the store
    assert resumed.models_trained == resumed.models_from_cache == 0
    assert resumed.frame.equals(cold.frame)
    elsewhere = RunOptions(out_dir=tmp_path / "out2", cache_dir=tmp_path / "cache", progress=False)
    warm = run_suite(REPO / "suites" / "smoke.yaml", elsewhere)  # new store, same checkpoints
    assert warm.models_trained == 0 and warm.models_from_cache == cold.models_trained == len(acc)
    assert warm.frame.equals(cold.frame)

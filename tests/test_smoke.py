"""The smoke suite on real data (mfeat and the audio-visual avdigits): the README's main job,
checked end to end: every family runs, the printed boards are the main boards ranked by the
composite with a reading of each, avdigits' clean board has both unimodal baselines below the
best fusion model, and a rerun resumes from the store without training or evaluating anything."""

from __future__ import annotations

from pathlib import Path

from mmbench.runner import RunOptions, run_suite

REPO = Path(__file__).resolve().parents[1]


def test_smoke_suite_covers_every_family_then_resumes_from_the_store(tmp_path: Path) -> None:
    opts = RunOptions(out_dir=tmp_path / "out", cache_dir=tmp_path / "cache", progress=False)
    cold = run_suite(REPO / "suites" / "smoke.yaml", opts)
    assert not cold.failed
    assert set(cold.frame["family"]) == {"clean", "adversarial", "missing", "random_dropout", "shift",
                                         "natural_shift", "subset_vote", "compound", "smoothing"}
    clean = cold.frame.query("family == 'clean' and metric == 'accuracy' and dataset == 'mfeat'")
    acc = clean.set_index("model")["value"]
    assert acc["late_fusion"] >= 0.95 and (acc > 0.9).all(), acc.to_dict()
    summary = cold.summary
    assert "## mfeat: main board" in summary and "Ranked by composite" in summary
    main = summary.split("## mfeat: main board")[1].split("Ranked by")[0]
    rows = [line.split("|") for line in main.splitlines() if line.startswith("|")]
    composite = [float(cells[5].split("±")[0]) for cells in rows if cells[1].strip().isdigit()]
    assert len(composite) == 3 and composite == sorted(composite, reverse=True)
    assert "is the most robust model here" in summary and "The weakest modality is" in summary
    assert "The largest drop from clean to robust" in summary and "LEADERBOARD.md" in summary
    av = cold.frame.query("family == 'clean' and metric == 'accuracy' and dataset == 'avdigits'")
    av = av.set_index("model")["value"]
    assert {"unimodal[image]", "unimodal[audio]"} <= set(av.index) and "## avdigits: main board" in summary
    assert av.drop(["unimodal[image]", "unimodal[audio]"]).max() > av[["unimodal[image]", "unimodal[audio]"]].max()
    assert "unimodal" not in " ".join(cold.frame.loc[cold.frame["dataset"] != "avdigits", "model"])
    resumed = run_suite(REPO / "suites" / "smoke.yaml", opts)  # every cell is in the store
    # 3 fusion models on mfeat, mfeat_ood, avdigits and avdigits_ood, both unimodal baselines on avdigits
    assert resumed.models_trained == resumed.models_from_cache == 0 and cold.models_trained == 14
    assert resumed.frame.equals(cold.frame)
    # serving checkpoints to a new store with identical tables: tests/test_run.py (a smaller suite)

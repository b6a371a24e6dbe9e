"""Figures: titles are wrapped to the figure's width (none is cut off), and one model keeps one
colour in every plot of a run."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from mmbench.render.plots import PALETTE, curves, model_colours, wrap_titles  # noqa: E402


def test_a_long_title_is_wrapped_inside_the_figure() -> None:
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1], [0, 1])
    ax.set_title("rank stability, 1000 bootstrap replicates of a dataset with a very long label "
                 "mfeat_with_an_attribute_split_on_the_morphological_view", fontsize=9)
    wrap_titles(fig)
    fig.tight_layout()
    fig.canvas.draw()
    box, frame = ax.title.get_window_extent(), fig.bbox
    assert "\n" in ax.title.get_text()
    assert box.x0 >= frame.x0 - 1 and box.x1 <= frame.x1 + 1 and box.y1 <= frame.y1 + 1
    plt.close(fig)


def test_model_colours_are_distinct_and_follow_the_run_order() -> None:
    models = [f"m{i:02d}" for i in range(30)]
    colours = model_colours(models)
    assert len(set(colours.values())) == 30 and colours["m00"] == PALETTE[0]
    assert model_colours(models[:3]) == {m: colours[m] for m in models[:3]}


def test_curves_draw_each_model_in_its_given_colour(tmp_path) -> None:
    rows = pd.DataFrame({"model": ["a", "a", "b", "b"], "recipe": "standard", "level": [0, 1, 0, 1],
                         "value": [0.9, 0.8, 0.7, 0.6]})
    seen = {}
    original = plt.Axes.plot

    def spy(self, *args, **kw):
        seen[kw.get("label")] = kw.get("color")
        return original(self, *args, **kw)

    plt.Axes.plot = spy
    try:
        curves(rows, tmp_path, ["x"], "level", "accuracy", "t", colours={"a": "#123456", "b": "#abcdef"})
    finally:
        plt.Axes.plot = original
    assert seen == {"a (standard)": "#123456", "b (standard)": "#abcdef"}

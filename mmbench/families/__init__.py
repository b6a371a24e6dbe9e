"""Perturbation families as components: one module per family (clean, adversarial, missing,
random dropout, shift, natural shift), each owning its rows, scores (and its part of the
composite), derived cells, tables, boards, plots and sanity checks; ``scoring.py`` composes the
scores of all registered families. Plugins add families through the ``mmbench.families`` entry
points."""

"""Perturbation families as components: one module per family, found by scanning this package
(every registered family, built-in or plugin: ``mmbench ls families``), each owning its rows,
scores (their roles for the report: :class:`~mmbench.families.base.ScoreSpec`), its part of the
composite, derived and reference cells, tables, boards, glossary terms, plots, a sentence of the
reading and sanity checks; ``base.py`` is the contract and ``scoring.py`` composes the scores of
all registered families. A new built-in family is two files: its perturbation in
``mmbench/perturb/`` and its family here. Plugins add families through the ``mmbench.families``
entry points."""

"""Statistics of a run's tidy rows and stored outcomes, the building blocks the families and the
report compose: paired-bootstrap and exact intervals, score directions, curve areas, Shapley
values, corruption errors, subset-vote certificates, which cells a model does not read, and the
sanity checks. Reads rows and outcomes only, never models or data; the analysis of a run that
uses them is :class:`mmbench.report.analysis.Analysis`."""

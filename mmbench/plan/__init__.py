"""Planning: a validated suite and its loaded datasets become training cells and the evaluation
cells that need them, each with a content-hash key (``cells.py``) that includes the source of
every module its components depend on (``sources.py``)."""

"""Rendering primitives that families and reports share: Markdown tables (``value ± half-width``
cells, level tables) and matplotlib figures (level curves, bars, heat maps). They format what
they are given and compute nothing about results."""

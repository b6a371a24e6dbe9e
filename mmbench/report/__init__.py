"""Reporting: publishing a results folder (files, plots, ``LEADERBOARD.md``, ``report.html``),
``mmbench compare``, and the Markdown, HTML and plot renderers."""

"""Storing results: the SQLite store of a results folder (one transaction per finished cell, its
facts and per-row outcomes), tidy rows, and the exported ``results.csv`` / ``results.json``."""

"""Contract tests for every registered component: models, datasets, perturbations,
corruptions, metrics and recipes, built-in or from an installed plugin.

``make test`` runs them with the rest of the test suite. On an installed plugin, run them with::

    python -m pytest --pyargs mmbench.testing -k my_component

Each test is parametrized from the registries, so a plugin's components are tested for free.
Models get generated data that fits their declared or derived modality names and kinds
(:mod:`mmbench.testing.fitting`); a test that cannot apply is skipped with a reason naming the
declaration to add. Each model meets a representative attack per attack mode and norm;
``MMBENCH_CONTRACT_ATTACKS=all`` runs every attack of the catalogue
(:mod:`mmbench.testing.attacks`).
"""

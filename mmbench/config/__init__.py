"""Configuration: suites as frozen dataclasses (YAML loading, includes, structure checks), run
options, parameter checks against a component's signature or config dataclass, and building a
registered model from a suite entry. Imports components and the registries, never the
layers above it (plan, execution, stats, render, families, report, the entry points)."""

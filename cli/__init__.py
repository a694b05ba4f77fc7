"""The `latentlab` command line: thin click shells over the latentlab Python API.

Installed as `latentlab.cli` (pyproject.toml maps the package to this folder): import it by that name."""

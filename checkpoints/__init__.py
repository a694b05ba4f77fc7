"""Data shipped with latentlab, installed as the package `latentlab.shipped` (pyproject.toml maps it to this
folder): the registry of models known by name (registry.json), the embedded toyfaces model (toyfaces/) and the
boundaries of shipped models (boundaries/). Find it with `latentlab.defaults.shipped_dir()`."""

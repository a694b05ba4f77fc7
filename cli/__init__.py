"""The `latentlab` command line: thin click shells over the latentlab Python API."""

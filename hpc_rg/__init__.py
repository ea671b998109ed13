"""hpc_rg: Monte Carlo at scale on spin lattices, neural networks trained on the samples, and
renormalization-group diagnostics comparing the two. See README.md and docs/ (docs/architecture.md first).

`__version__` is the one version source: setup.cfg reads it (`version = attr: hpc_rg.__version__`), and
`hpc_rg.provenance` adds the git commit for `hpc-rg --version` and the attributes of output files.
"""
__version__ = "0.1.0"

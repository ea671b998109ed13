"""hpc_rg: Monte Carlo at scale on spin lattices, neural networks trained on the samples, and
renormalization-group diagnostics comparing the two. See README.md and DESIGN.md."""
__version__ = "0.1.0"

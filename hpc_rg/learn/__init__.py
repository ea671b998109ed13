"""Neural networks trained on ensembles: RBM, stacked RBM (DBN), autoencoder, coarse-graining CNN,
temperature classifier, RSMI map; the `hpc-rg train` stage (`hpc_rg.learn.stage.run`). Each model kind is a
learner plugin declared in its module (`hpc_rg.learn.learner`).

Public loader for the diagnostics: `load_model(path) -> (model, meta)`. Importing this package is cheap;
torch is imported on first use.
"""


def load_model(path, device="cpu"):
    """(model, meta) from `<out>/models/<name>.pt`; see `hpc_rg.learn.modelfile`."""
    from hpc_rg.learn.modelfile import load_model as _load
    return _load(path, device)


__all__ = ["load_model"]

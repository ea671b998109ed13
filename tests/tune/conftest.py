"""The tune tests search over the learning tests' models: the same small Ising ensembles."""
from tests.learn.conftest import critical_ensemble, ensemble_factory, ladder_ensemble  # noqa: F401

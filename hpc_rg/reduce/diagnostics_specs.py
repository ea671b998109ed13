"""Inert former names, kept only because tests/seeds/seed_helpers_12.py (`register_diagnostics`, a no-op kept
for old checkouts) still imports them: the model reductions' specs are in `model_specs`, each named by its
reduction's PLUGINS declaration, so nothing is left to register. Delete with that helper's function."""

DIAGNOSTIC_SPECS: dict = {}
DIAGNOSTIC_MODULES: list = []

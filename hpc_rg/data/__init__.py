"""Files shipped in the package: quickstart.toml, a copy of jobs/quickstart.toml (a test keeps them identical),
which `hpc-rg demo` runs from an installed wheel."""

"""The `hpc-rg tune` stage (`hpc_rg.tune.stage.run`): Optuna searches over the settings of [train.<model>]
tables (`search`), their [tune.<model>] tables (`spec`) and figures (`figures`)."""

"""softmax_exp's Optuna sweeper (Hydra finds plugins in the ``hydra_plugins`` namespace package only)."""

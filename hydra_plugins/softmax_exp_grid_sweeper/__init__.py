"""softmax_exp's Hydra plugin (Hydra finds plugins in the ``hydra_plugins`` namespace package only)."""

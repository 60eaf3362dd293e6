"""Our searchers inside other tools: ``nas.integrations.optuna.Sampler`` drives any Optuna study."""

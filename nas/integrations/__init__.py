"""Our searchers inside other tools: ``nas.integrations.optuna.Sampler`` drives any Optuna study,
``nas.integrations.tune.Searcher`` any Ray Tune experiment (needs the ``ray`` extra)."""

"""The ``nas`` command line: Hydra config groups for ``nas search``, plus show/spaces/export."""

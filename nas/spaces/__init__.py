"""Search spaces. Each module registers its space (and published architectures) on import."""

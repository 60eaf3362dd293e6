"""BossNAS (Li et al., ICCV 2021): block-wise self-supervised NAS on the HyTra space.

``searcher`` registers ``bossnas`` (no torch import); ``selection`` picks architectures from block
rating tables (numpy). The torch side is private so that discovering the searchers does not load
torch: ``_views`` (augmentations), ``_supernet`` (ops from primitives, composed along a path, necks),
``_training`` (ensemble bootstrapping, EMA), ``_rating`` (population-center embeddings after BN
recalibration) and ``_search`` (the loop, checkpoints, files).
"""

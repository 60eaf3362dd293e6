"""BossNAS (Li et al., ICCV 2021): block-wise self-supervised NAS on block-wise spaces (hytra, nb201).

``searcher`` registers ``bossnas`` (no torch import); ``selection`` picks architectures from block rating
tables (numpy); ``_search`` is the policy loop (torch). The supernets are models in
``nas.backends.torch.supernets``; their training and rating are ``nas.evaluators.supernet``.
"""

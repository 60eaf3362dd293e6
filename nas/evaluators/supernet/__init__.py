"""Weight-sharing supernet training and rating (torch).

BossNAS's block-wise ensemble bootstrapping: ``_trainer`` (``BlockwiseTrainer``: the loop, collapse gates,
checkpoints), ``_bootstrap`` (ensemble target, BYOL loss, EMA, optimizers), ``_lars``, ``_necks``, ``_views``
(augmentations, kornia), ``_rating`` (BN recalibration, embeddings) and ``embeddings`` (tables, population-center
distances, gates; numpy). FBNetV5's multitask supernet: ``_multitask`` (``MultitaskTrainer``: one forward pass
for every task's heads under a mask, importance-weighted losses, the sandwich rule). Both drive their steps with
``_loop.run_steps`` (progress, ETA, checkpoint cadence). The torch modules are private so that discovering
evaluators does not import torch.
"""

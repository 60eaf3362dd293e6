"""FBNetV5's one-run multitask search (``searcher=fbnetv5``).

``searcher`` registers the searcher (no torch import). The torch side is private so that discovering the
searchers does not load torch: ``_estimator`` (per-task Bernoulli distributions, proposal, importance
weights, REINFORCE), ``_tasks`` (heads' losses, FCOS targets and decoding), ``_search`` (one step, the loop,
short single-task training) and ``_driver`` (a whole run: data, tables, final trainings, checkpoints). The supernet is a
model: ``nas.backends.torch.supernets.fbnetv5`` (plan fragments lowered to torch, run under a mask; analytic mask
costs).
"""

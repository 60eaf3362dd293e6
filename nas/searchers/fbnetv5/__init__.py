"""FBNetV5's one-run multitask search (``searcher=fbnetv5``): the policy and the run.

``searcher`` registers the searcher (no torch import). The torch side is private so that discovering the
searchers does not load torch: ``_estimator`` (per-task Bernoulli distributions, proposal, importance weights,
REINFORCE), ``_policy`` (those distributions behind ask/tell over masks), ``_search`` (one step: the policy asks,
the trainer trains, the policy is told; the loop) and ``_driver`` (a whole run: data, tables, final trainings,
checkpoints). The supernet is a model (``nas.backends.torch.supernets.fbnetv5``: plan fragments lowered to torch,
run under a mask; analytic mask costs); its training is the evaluators' (``nas.evaluators.supernet``'s
``MultitaskTrainer``, which shares its step loop and schedule with BossNAS's block-wise trainer), and so are the
heads' losses and the stand-alone trainings (``nas.evaluators.multitask``).
"""

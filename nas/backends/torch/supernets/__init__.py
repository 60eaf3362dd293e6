"""Weight-sharing supernets (torch): models that run one candidate path per block, lowered from the IR.

``blockwise`` holds the interface and the registry; ``hytra`` (BossNAS's fabric) and ``nb201`` (one block per
NAS-Bench-201 stage) register themselves. Their training lives in ``nas.evaluators.supernet``. ``fbnetv5`` is
FBNetV5's multitask supernet (every plan unit lowered once, run under a keep/skip mask), trained by
``searcher=fbnetv5``.
"""

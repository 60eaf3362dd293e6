"""A Hydra training script whose architecture and learning rate the ``nas`` sweeper searches.

The "training" is a stand-in with a known optimum, so a search can be checked: the loss is smallest (0.0) at
``model.depth=4 model.width=64 model.activation=gelu optim.lr=0.003``. Replace ``loss`` with real training and
return the validation loss; the sweeper minimises the returned number (``hydra.sweeper.direction``).

    python train.py                                     # one run with conf/config.yaml
    python train.py -m hydra/sweeper=nas hydra.sweeper.searcher=evolution hydra.sweeper.n_trials=40
    python train.py -m hydra/sweeper=nas hydra/launcher=joblib hydra.sweeper.n_jobs=2 \\
        'optim.lr=tag(log,interval(0.0001,0.1))'     # four jobs per launch, two at a time; lr searched too

The searched parameters are ``hydra.sweeper.params`` in conf/config.yaml (a command-line sweep adds to or
replaces them). The best parameters and loss are in ``<sweep dir>/optimization_results.yaml``.
"""

from __future__ import annotations

import math

import hydra
from omegaconf import DictConfig

ACTIVATION_PENALTY = {"gelu": 0.0, "relu": 0.5, "tanh": 1.0, "sigmoid": 2.0}


def loss(depth: int, width: int, activation: str, lr: float) -> float:
    """The stand-in validation loss: 0 at depth 4, width 64, gelu, lr 0.003."""
    return ((depth - 4) ** 2 + (math.log2(width) - 6) ** 2 + ACTIVATION_PENALTY[activation]
            + (math.log10(lr) - math.log10(0.003)) ** 2)


@hydra.main(config_path="conf", config_name="config", version_base=None)
def main(cfg: DictConfig) -> float:
    """Train (here: evaluate the stand-in) and return the validation loss for the sweeper."""
    value = loss(cfg.model.depth, cfg.model.width, cfg.model.activation, cfg.optim.lr)
    print(f"depth={cfg.model.depth} width={cfg.model.width} activation={cfg.model.activation} "
          f"lr={cfg.optim.lr}: loss {value:.4f}")
    return value


if __name__ == "__main__":
    main()

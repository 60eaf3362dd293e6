"""The tabular, cost and train evaluators on real data."""

import pytest

import nas
from nas.core import UserError
from nas.evaluators import EvalContext, make_evaluator

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
BEST_PARAMS, BEST_MACS = 1_073_466, 153_272_960  # NB201 reports 1.07 MB and 153.27 MFLOPs for this cell


@pytest.mark.parametrize("dataset, valid_acc, test_acc", [("cifar10", 84.3840, 94.3733),
                                                        ("cifar100", 60.2000, 73.2200),
                                                        ("imagenet16", 37.1333, 46.7111)])
def test_tabular_reads_published_values(nb201_table, dataset, valid_acc, test_acc):
    """The best CIFAR-10 cell's row (12-epoch validation, 200-epoch test) for each dataset."""
    evaluator = make_evaluator("tabular", table=str(nb201_table), dataset=dataset)
    metrics = evaluator(nas.space("nb201").parse(BEST), EvalContext())
    assert metrics["valid_accuracy"] == pytest.approx(valid_acc, abs=1e-3)
    assert metrics["test_accuracy"] == pytest.approx(test_acc, abs=1e-3)
    assert metrics["params"] == BEST_PARAMS and metrics["macs"] == BEST_MACS


def test_tabular_errors(synthetic_nb201_table, tmp_path):
    with pytest.raises(UserError, match="valid choices: cifar10, cifar100, imagenet16"):
        make_evaluator("tabular", table=str(synthetic_nb201_table), dataset="svhn")
    bad = tmp_path / "t.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(UserError, match="lacks columns"):
        make_evaluator("tabular", table=str(bad))


def test_cost_evaluator():
    """NB201's CIFAR-10 network: 1.07 M parameters and 153.3 M MACs for the best cell, 73 k for the empty one."""
    space, evaluator = nas.space("nb201"), make_evaluator("cost")
    assert evaluator(space.parse(BEST), EvalContext()) == {"params": BEST_PARAMS, "macs": BEST_MACS}
    empty = space.parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    assert evaluator(empty, EvalContext()) == {"params": 73_306, "macs": 7_783_040}


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_train_evaluator_learns_digits(backend):
    space = nas.space("nb201", preset="small", input_shape=[1, 8, 8])
    g = space.parse(BEST)
    reports = []
    evaluator = make_evaluator("train", backend=backend, dataset={"name": "digits"}, epochs=3, batch_size=32,
                               lr=0.05)
    metrics = evaluator(g, EvalContext(seed=0, report=lambda e, m: reports.append((e, m)) or False))
    assert [e for e, _ in reports] == [1, 2, 3]
    assert metrics["valid_accuracy"] > 50 and metrics["test_accuracy"] > 50  # 10 classes: chance is 10%
    assert metrics["params"] == nas.cost(g)["params"] and metrics["steps_per_second"] > 0
    again = evaluator(g, EvalContext(seed=0))
    assert again["valid_accuracy"] == pytest.approx(metrics["valid_accuracy"], abs=1e-6)  # deterministic


def test_train_evaluator_prunes_when_asked():
    from nas.backends.training import Pruned

    g = nas.space("nb201", preset="small", input_shape=[1, 8, 8]).sample(0)
    evaluator = make_evaluator("train", dataset={"name": "digits"}, epochs=3)
    with pytest.raises(Pruned) as info:
        evaluator(g, EvalContext(report=lambda epoch, metrics: epoch == 1))
    assert info.value.epoch == 1 and "valid_accuracy" in info.value.metrics

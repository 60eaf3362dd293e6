"""The tabular, cost and train evaluators on real data."""

import pytest

import nas
from nas.core import UserError
from nas.evaluators import EvalContext, make_evaluator

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


@pytest.mark.parametrize("dataset, test_acc", [("cifar10", 94.37), ("cifar100", 73.51)])
def test_tabular_reads_published_values(nb201_table, dataset, test_acc):
    evaluator = make_evaluator("tabular", table=str(nb201_table), dataset=dataset)
    metrics = evaluator(nas.space("nb201").parse(BEST), EvalContext())
    if dataset == "cifar10":
        assert metrics["test_accuracy"] == pytest.approx(94.3733, abs=1e-3)  # the benchmark's best cell
    assert metrics["test_accuracy"] <= 100 and metrics["valid_accuracy"] < metrics["test_accuracy"]
    assert metrics["params"] == nas.cost(nas.space("nb201").parse(BEST))["params"]


def test_tabular_errors(nb201_table, tmp_path):
    with pytest.raises(UserError, match="valid choices: cifar10, cifar100, imagenet16"):
        make_evaluator("tabular", table=str(nb201_table), dataset="svhn")
    bad = tmp_path / "t.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(UserError, match="lacks columns"):
        make_evaluator("tabular", table=str(bad))


def test_cost_evaluator():
    g = nas.space("nb201").sample(0)
    assert make_evaluator("cost")(g, EvalContext()) == nas.cost(g)


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

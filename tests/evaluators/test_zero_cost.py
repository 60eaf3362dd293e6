"""Zero-cost proxies: each one's defining property on cases small enough to compute by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nas.backends.torch import build  # noqa: E402
from nas.core.ir import ArchSpec, GraphBuilder  # noqa: E402
from nas.core.space import SPACES  # noqa: E402
from nas.data.base import ArrayDataset, load_dataset  # noqa: E402
from nas.evaluators.base import EvalContext, make_evaluator  # noqa: E402
from nas.evaluators.zero_cost import WORST, arch_scores, proxy_scores, vote_scores  # noqa: E402
from nas.evaluators.zero_cost import _torch as zc  # noqa: E402
from nas.evaluators.zero_cost.graph import main_plan  # noqa: E402
from nas.spaces.nb201 import NB201Space  # noqa: E402
from nas.testing.parity import space_for_tests  # noqa: E402

LEARNED = ("synflow", "snip", "grad_norm", "fisher", "jacob_cov", "naswot")
ALL_TORCH = (*LEARNED, "params", "macs")
DISCONNECTED = "|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|none~0|none~1|none~2|"


def random_data(shape: tuple[int, ...], classes: int = 10, count: int = 32, seed: int = 0) -> ArrayDataset:
    """A small ArrayDataset of Gaussian images (every split the same arrays)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((count, *shape)).astype(np.float32)
    y = rng.integers(0, classes, count).astype(np.int64)
    return ArrayDataset("random", x, y, x, y, x, y, classes)


@pytest.fixture(scope="module")
def digits() -> ArrayDataset:
    return load_dataset("digits")


@pytest.fixture(scope="module")
def nb201() -> NB201Space:
    return NB201Space(preset="small", input_shape=[1, 8, 8])


def mlp(widths: tuple[int, ...], bias: bool = True, relu: bool = True, bn: bool = False) -> ArchSpec:
    """input (widths[0],) -> [linear (-> batchnorm) -> relu] ... -> linear: a network small enough to do by hand."""
    g = GraphBuilder()
    x = g.input((widths[0],))
    for i, width in enumerate(widths[1:]):
        x = g.add("linear", x, out_features=width, bias=bias, name=f"fc{i}")
        if i < len(widths) - 2:
            if bn:
                x = g.add("batchnorm", x, name=f"bn{i}")
            if relu:
                x = g.add("act", x, fn="relu", name=f"relu{i}")
    return g.build({"logits": x})


def weights_of(model: torch.nn.Module, arch: ArchSpec) -> list[np.ndarray]:
    return [model.layers[n.name].weight.detach().double().numpy() for n in arch.nodes if n.op == "linear"]


# synflow ---------------------------------------------------------------------------------------------------------

def test_synflow_of_a_bias_free_chain_is_depth_times_the_path_sum() -> None:
    """R = 1'|W2||W1|1 is linear in each layer's |weights|, so each layer contributes R (Euler): 2R in all.
    Batch norm is skipped: with it the score would shrink by 1/sqrt(1 + eps)."""
    arch = mlp((3, 4, 2), bias=False, bn=True)
    model = build(arch, seed=1)
    w1, w2 = weights_of(model, arch)
    path_sum = np.abs(w2) @ np.abs(w1) @ np.ones(3)
    assert zc.synflow(model, arch, main_plan(arch)) == pytest.approx(2 * path_sum.sum(), rel=1e-12)


def test_synflow_scales_with_the_classifier_weight(nb201: NB201Space) -> None:
    """Scaling the last layer's weights by a scales every layer's term by a (biases add no term)."""
    arch = nb201.decode(nb201.sample(3))
    plan = main_plan(arch)
    model = build(arch, seed=0)
    base = zc.synflow(build(arch, seed=0), arch, plan)
    with torch.no_grad():
        model.layers["head/classifier"].weight.mul_(3.0)
    assert zc.synflow(model, arch, plan) == pytest.approx(3.0 * base, rel=1e-9)


def test_synflow_does_not_read_the_data(nb201: NB201Space, digits: ArrayDataset) -> None:
    genotype = nb201.sample(5)
    noise = random_data((1, 8, 8), count=len(digits.train_x))
    scores = {proxy_scores(genotype, ["synflow"], data, seed=4)["zc_synflow"] for data in (digits, noise, None)}
    assert len(scores) == 1 and next(iter(scores)) > 0


# naswot ----------------------------------------------------------------------------------------------------------

def test_naswot_on_written_down_codes() -> None:
    """ReLU straight on the input: the codes are the signs of the examples, K[i, j] = 2 - hamming."""
    g = GraphBuilder()
    x = g.add("act", g.input((2,)), fn="relu")
    arch = g.build({"logits": g.add("linear", x, out_features=2)})
    examples = torch.tensor([[1.0, 2.0], [3.0, -1.0], [-2.0, -0.5]])
    kernel = np.array([[2, 1, 0], [1, 2, 1], [0, 1, 2]], dtype=float)  # codes 11, 10, 00
    assert np.linalg.det(kernel) == pytest.approx(4.0)
    assert zc.naswot(build(arch), arch, main_plan(arch), examples) == pytest.approx(math.log(4.0), abs=1e-12)


def test_naswot_matches_numpy_on_a_two_layer_network() -> None:
    """Codes of both ReLU layers (their inputs > 0) concatenated; the log-determinant with numpy."""
    arch = mlp((3, 16, 12, 2))
    model = build(arch, seed=2)
    x = np.random.default_rng(0).standard_normal((6, 3))
    (w0, w1, _), (b0, b1) = weights_of(model, arch), [model.layers[f"fc{i}"].bias.detach().double().numpy()
                                                       for i in range(2)]
    h0 = x @ w0.T + b0
    h1 = np.maximum(h0, 0) @ w1.T + b1
    codes = np.concatenate([h0 > 0, h1 > 0], axis=1).astype(float)
    kernel = codes @ codes.T + (1 - codes) @ (1 - codes).T
    sign, expected = np.linalg.slogdet(kernel)
    assert sign > 0 and np.isfinite(expected)
    got = zc.naswot(model, arch, main_plan(arch), torch.from_numpy(x).float())
    assert got == pytest.approx(expected, abs=1e-9)


def test_naswot_of_identical_examples_is_the_worst(nb201: NB201Space) -> None:
    """One image repeated: K has rank one, log|K| = -inf, reported as WORST (finite, never NaN)."""
    one = random_data((1, 8, 8), count=1)
    x, y = np.repeat(one.train_x, 16, axis=0), np.repeat(one.train_y, 16)
    same = ArrayDataset("same", x, y, x, y, x, y, 10)
    scores = proxy_scores(nb201.sample(0), ["naswot"], same, batch_size=8)
    assert scores == {"zc_naswot": WORST}


# snip and grad_norm ----------------------------------------------------------------------------------------------

def test_snip_and_grad_norm_by_hand() -> None:
    """logits = W2 (W1 x + b1) + b2, mean cross-entropy: dL/dz = (softmax - onehot) / N, back by hand."""
    arch = mlp((3, 4, 3), relu=False)
    model = build(arch, seed=3)
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((5, 3)), np.array([0, 2, 1, 1, 0])
    w1, w2 = weights_of(model, arch)
    b1, b2 = (model.layers[f"fc{i}"].bias.detach().double().numpy() for i in range(2))
    h = x @ w1.T + b1
    z = h @ w2.T + b2
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    dz = (p - np.eye(3)[y]) / len(x)
    g1, g2 = (dz @ w2).T @ x, dz.T @ h
    tx, ty = torch.from_numpy(x).float(), torch.from_numpy(y)
    plan = main_plan(arch)
    snip = zc.snip(build(arch, seed=3), arch, plan, tx, ty)
    assert snip == pytest.approx(np.abs(w1 * g1).sum() + np.abs(w2 * g2).sum(), rel=1e-5)
    norm = zc.grad_norm(build(arch, seed=3), arch, plan, tx, ty)
    assert norm == pytest.approx(np.linalg.norm(g1) + np.linalg.norm(g2), rel=1e-5)  # per-layer norms added
    dh = dz @ w2  # fisher: 0.5 * mean over examples of (activation * its gradient)^2, summed over units
    fisher = 0.5 * (((h * dh) ** 2).mean(0).sum() + ((z * dz) ** 2).mean(0).sum())
    assert zc.fisher(build(arch, seed=3), arch, plan, tx, ty) == pytest.approx(fisher, rel=1e-4)


def test_jacob_cov_of_a_linear_network() -> None:
    """A linear map has the same input gradient for every example: a correlation matrix of ones, whose
    eigenvalues are N (once) and 0, so the score is -sum(log(l + k) + 1 / (l + k)) over those."""
    arch = mlp((3, 4, 3), relu=False)
    x = torch.from_numpy(np.random.default_rng(2).standard_normal((5, 3))).float()
    eig, k = np.array([5.0, 0, 0, 0, 0]), 1e-5
    expected = -np.sum(np.log(eig + k) + 1 / (eig + k))
    assert zc.jacob_cov(build(arch, seed=0), arch, main_plan(arch), x) == pytest.approx(expected, rel=1e-6)


# degenerate candidates, determinism, every space -----------------------------------------------------------------

def test_a_disconnected_cell_scores_the_worst(nb201: NB201Space, digits: ArrayDataset) -> None:
    scores = proxy_scores(nb201.parse(DISCONNECTED), ALL_TORCH, digits, batch_size=16)
    assert {k: scores[f"zc_{k}"] for k in LEARNED} == dict.fromkeys(LEARNED, WORST)
    assert scores["zc_params"] > 0 and scores["zc_macs"] > 0  # counts stay counts
    live = proxy_scores(nb201.parse(DISCONNECTED.replace("none~2", "skip_connect~2")), LEARNED, digits,
                        batch_size=16)
    assert all(math.isfinite(v) and v > WORST for v in live.values())


def test_fisher_and_jacob_cov_are_finite_and_seeded(nb201: NB201Space, digits: ArrayDataset) -> None:
    genotype = nb201.sample(7)
    first = proxy_scores(genotype, ["fisher", "jacob_cov"], digits, batch_size=16, seed=3)
    again = proxy_scores(genotype, ["fisher", "jacob_cov"], digits, batch_size=16, seed=3)
    other = proxy_scores(genotype, ["fisher", "jacob_cov"], digits, batch_size=16, seed=4)
    assert first == again and all(math.isfinite(v) and v > WORST for v in first.values())
    assert first["zc_fisher"] > 0 and other != first


@pytest.mark.parametrize("space_name", SPACES.names())
def test_every_space_gets_every_torch_proxy(space_name: str) -> None:
    space = space_for_tests(space_name)
    arch = space.decode(space.sample(0))
    classes = arch.output_shapes["logits"][0]
    scores = arch_scores(arch, ALL_TORCH, random_data(tuple(arch.input_shape), classes, count=8), batch_size=4)
    assert set(scores) == {f"zc_{p}" for p in ALL_TORCH}
    assert all(math.isfinite(v) and v > WORST for v in scores.values()), scores


# vote and the evaluator ------------------------------------------------------------------------------------------

def test_vote_counts_pairwise_majority_wins() -> None:
    table = {"synflow": np.array([3.0, 2.0, 1.0]), "jacob_cov": np.array([1.0, 3.0, 2.0]),
             "snip": np.array([3.0, 1.0, 2.0])}
    # 0 beats 1 (synflow, snip) and 2 (synflow, snip); 1 beats 2 (synflow, jacob_cov); 2 beats nobody
    assert vote_scores(table).tolist() == [2, 1, 0]
    assert vote_scores({"a": np.array([1.0, 1.0])}).tolist() == [0, 0]  # ties win nothing
    assert vote_scores({"a": np.array([1.0, 2.0]), "b": np.array([2.0, 1.0])}).tolist() == [0, 0]  # split votes


def test_the_evaluator_reports_each_proxy_and_a_running_vote(nb201: NB201Space) -> None:
    evaluator = make_evaluator("proxy", proxies=["naswot", "vote"], batch_size=8, seed=0)
    first = evaluator(nb201.sample(0), EvalContext(seed=1))
    assert set(first) == {"zc_naswot", "zc_synflow", "zc_jacob_cov", "zc_snip", "zc_vote"}
    assert first["zc_vote"] == 0.5
    worst = evaluator(nb201.parse(DISCONNECTED), EvalContext(seed=2))
    assert worst["zc_vote"] == 0.0
    best = evaluator(nb201.sample(0), EvalContext(seed=3))  # fixed evaluator seed: the first candidate again
    assert best["zc_vote"] == 0.5 and best["zc_naswot"] == first["zc_naswot"]


def test_data_proxies_score_without_random_masks() -> None:
    """A network with drop-path (NASNet's small preset) scores the same twice: dropout and drop-path are off
    while batch norm uses the batch (a random mask would make every score a draw)."""
    space = space_for_tests("nasnet")
    arch = space.decode(space.sample(1))
    plan = main_plan(arch)
    assert any(n.op == "drop_path" and dict(n.params)["rate"] > 0 for n in arch.nodes)
    model = build(arch, seed=0)
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((8, *arch.input_shape)).astype(np.float32))
    y = torch.arange(8) % 10
    assert zc.naswot(model, arch, plan, x) == zc.naswot(model, arch, plan, x)
    assert zc.jacob_cov(model, arch, plan, x) == zc.jacob_cov(model, arch, plan, x)
    assert zc.grad_norm(model, arch, plan, x, y) == zc.grad_norm(model, arch, plan, x, y)


def test_channel_dropout_is_off_while_scoring() -> None:
    """SimpleNet's channel-wise dropout (``nn.Dropout2d``) is switched off like element-wise dropout."""
    space = SPACES.get("simplenet")(preset="small")
    arch = space.decode(space.make({"table": "cifar_310k", "width_mult": 0.25, "depth_mult": 1.0,
                                    "stride_mode": 0, "resolution": 16, "dropout": 0.2}))
    model = build(arch, seed=0)
    assert any(isinstance(m, torch.nn.Dropout2d) for m in model.modules())
    plan = main_plan(arch)
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((8, *arch.input_shape)).astype(np.float32))
    y = torch.arange(8) % 10
    assert zc.grad_norm(model, arch, plan, x, y) == zc.grad_norm(model, arch, plan, x, y)
    assert zc.jacob_cov(model, arch, plan, x) == zc.jacob_cov(model, arch, plan, x)

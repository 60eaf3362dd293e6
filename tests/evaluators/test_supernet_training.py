"""The block-wise self-supervised supernet trainer: loss, EMA, ensemble target, optimizers, gates, views."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from nas.backends.torch.supernets.hytra import Supernet, SupernetConfig
from nas.data.base import ArrayDataset
from nas.evaluators.supernet._bootstrap import (
    Siamese,
    batch_cosine,
    byol_loss,
    ema_momentum,
    ensemble_target,
    make_optimizer,
    sample_paths,
    train_step,
)
from nas.evaluators.supernet._lars import LARS
from nas.evaluators.supernet._trainer import BlockwiseTrainer, BootstrapConfig
from nas.evaluators.supernet._views import Views
from nas.evaluators.supernet.embeddings import EmbeddingTable, gate_failures, rating_gates
from nas.spaces.hytra.encoding import block_candidates


def _tiny_siamese(zero: bool = True) -> Siamese:
    cfg = SupernetConfig((16, 32, 64, 128), 8, 8, (1, 32, 32), zero_init_residual=zero)
    return Siamese(lambda: Supernet(cfg), 16, 8)


def test_ema_momentum_goes_from_base_to_one_on_a_cosine():
    assert ema_momentum(0.99, 0, 100) == pytest.approx(0.99)
    assert ema_momentum(0.99, 50, 100) == pytest.approx(0.995)
    assert ema_momentum(0.99, 100, 100) == pytest.approx(1.0)
    values = [ema_momentum(0.99, s, 40) for s in range(41)]
    assert values == sorted(values)


def test_loss_is_minus_two_cosine():
    gen = torch.Generator().manual_seed(0)
    p, t = torch.randn(8, 5, generator=gen), torch.randn(8, 5, generator=gen)
    expected = -2 * torch.nn.functional.cosine_similarity(p, t, dim=1).mean()
    assert float(byol_loss(p, t)) == pytest.approx(float(expected), abs=1e-6)
    assert float(byol_loss(p, 3 * p)) == pytest.approx(-2.0, abs=1e-6)
    assert float(byol_loss(p, -p)) == pytest.approx(2.0, abs=1e-6)


def test_ensemble_target_is_the_mean_of_normalised_path_projections():
    gen = torch.Generator().manual_seed(1)
    projections = [torch.randn(6, 4, generator=gen) * (k + 1) for k in range(4)]
    manual = sum(p / p.norm(dim=1, keepdim=True) for p in projections) / 4
    assert torch.allclose(ensemble_target(projections), manual, atol=1e-6)


def test_batch_cosine_is_one_for_a_collapsed_batch_and_near_zero_for_spread_vectors():
    gen = torch.Generator().manual_seed(4)
    same = torch.randn(1, 32, generator=gen).repeat(16, 1) * torch.rand(16, 1, generator=gen)
    assert batch_cosine(same) == pytest.approx(1.0, abs=1e-5)
    assert abs(batch_cosine(torch.randn(256, 32, generator=gen))) < 0.02
    pair = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    assert batch_cosine(pair) == pytest.approx(2 ** -0.5, abs=1e-6)


@pytest.mark.parametrize("prefix_grad, center", [(True, False), (False, False), (True, True)])
def test_train_step_trains_every_path_toward_the_ensemble_of_all_sampled_paths(prefix_grad, center):
    torch.manual_seed(0)
    model = _tiny_siamese().train()
    prefix = [block_candidates(0, 0, "executable")[0]]
    start = model.online.end_level(0, prefix[0])
    paths = sample_paths(block_candidates(1, start, "executable"), 4, random.Random(0))
    assert len(set(paths)) == 4
    gen = torch.Generator().manual_seed(2)
    views_a = [torch.randn(4, 1, 32, 32, generator=gen) for _ in paths]
    views_b = [torch.randn(4, 1, 32, 32, generator=gen) for _ in paths]
    with torch.no_grad():
        embed_t = lambda x, p: model.embed(model.target, model.target_necks[1], x, prefix, 1, p)  # noqa: E731
        t_a = ensemble_target([embed_t(views_a[i], p) for i, p in enumerate(paths)])
        t_b = ensemble_target([embed_t(views_b[i], p) for i, p in enumerate(paths)])
        target_cos = batch_cosine(t_a)
        if center:  # the batch mean of both views' ensemble targets is taken out before the loss
            mean = torch.cat([t_a, t_b]).mean(0, keepdim=True)
            t_a, t_b = t_a - mean, t_b - mean
        losses = []
        for i, p in enumerate(paths):
            q = lambda x, p=p: model.predictors[1](model.embed(model.online, model.online_necks[1], x, prefix, 1, p))
            losses.append(float(byol_loss(q(views_a[i]), t_b) + byol_loss(q(views_b[i]), t_a)))
    got = train_step(model, 1, prefix, paths, views_a, views_b, prefix_grad, center)
    assert got["loss"] == pytest.approx(sum(losses) / 4, abs=1e-5)
    assert got["target_batch_cos"] == pytest.approx(target_cos, abs=1e-6)  # reported before centring
    assert 0 <= got["target_batch_cos"] <= 1 and -1 <= got["pred_batch_cos"] <= 1
    assert all(p.grad is None for p in model.target.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.predictors[1].parameters())
    stem_grads = [p.grad for p in model.online.stem.parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in stem_grads) == prefix_grad
    if not prefix_grad:
        assert all(g is None for g in stem_grads)


@pytest.mark.parametrize("zero", [True, False])
def test_zero_init_residual_option_sets_the_last_bn_of_every_op(zero):
    """Released ops start as the identity (last BN gamma 0); the option turns that off for short searches."""
    model = _tiny_siamese(zero)
    gammas = [m.weight for m in model.online.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    zeroed = sum(1 for g in gammas if not g.detach().any())
    ops = len(model.online.ops)
    assert zeroed == (ops if zero else 0) and ops > 0


def test_lars_bounds_the_step_of_every_tensor_bias_and_zero_norm_tensors_included():
    gen = torch.Generator().manual_seed(3)
    w = torch.nn.Parameter(torch.randn(8, 4, generator=gen))
    b = torch.nn.Parameter(torch.randn(8, generator=gen))
    z = torch.nn.Parameter(torch.zeros(8))
    w.grad, b.grad, z.grad = (1e3 * torch.randn(8, 4, generator=gen), 1e3 * torch.randn(8, generator=gen),
                              1e3 * torch.randn(8, generator=gen))
    w0, b0, gw, gb, gz = w.detach().clone(), b.detach().clone(), w.grad.clone(), b.grad.clone(), z.grad.clone()
    opt = LARS([{"params": [w], "weight_decay": 1e-4}, {"params": [b, z], "weight_decay": 0.0}], lr=2.0,
               momentum=0.9, eta=0.01)
    opt.step()
    trust = 0.01 * w0.norm() / (gw + 1e-4 * w0).norm()
    assert torch.allclose(w.detach(), w0 - 2.0 * trust * (gw + 1e-4 * w0), atol=1e-6)
    # a bias takes a trust ratio too (the released config exempts it: the predictor's bias then explodes)
    assert float((b.detach() - b0).norm()) == pytest.approx(2.0 * 0.01 * float(b0.norm()), rel=1e-4)
    assert torch.allclose(b.detach(), b0 - 2.0 * 0.01 * b0.norm() / gb.norm() * gb, atol=1e-6)
    # a zero-norm tensor moves by lr * eta in norm, as a unit-norm one would
    assert float(z.detach().norm()) == pytest.approx(2.0 * 0.01, rel=1e-4)
    assert torch.allclose(z.detach(), -2.0 * 0.01 * gz / gz.norm(), atol=1e-6)
    opt.step()  # momentum: the second step adds 0.9 of the first
    assert float((w.detach() - w0).norm()) > 2.0 * 0.01 * float(w0.norm())


def test_make_optimizer_keeps_weight_decay_off_bn_and_bias_and_knows_its_kinds():
    model = _tiny_siamese()
    for kind, cls in (("lars", LARS), ("adamw", torch.optim.AdamW), ("sgd", torch.optim.SGD)):
        opt = make_optimizer(model, 0, 0.1, 0.9, 1e-4, kind)
        assert isinstance(opt, cls)
        decay, other = opt.param_groups
        assert decay["weight_decay"] == 1e-4 and other["weight_decay"] == 0.0
        assert all(p.ndim > 1 for p in decay["params"]) and all(p.ndim == 1 for p in other["params"])
    with pytest.raises(ValueError, match="unknown optimizer"):
        make_optimizer(model, 0, 0.1, 0.9, 1e-4, "adam")


def test_predictor_lr_scales_the_steps_of_the_predictor_only():
    """``predictor_lr=5``: one LARS step moves every predictor tensor five times as far (relative to its norm)
    as with 1, and every backbone and projector tensor exactly as far."""
    cfg = SupernetConfig((16, 32, 64, 128), 8, 8, (1, 32, 32))
    moved = {}
    for mult in (1.0, 5.0):
        trainer = BlockwiseTrainer(lambda: Supernet(cfg), _tiny_data(), BootstrapConfig(
            steps_per_block=1, batch_size=4, warmup=0.0, rating_samples=4, bn_batch=4, neck_hidden=16, neck_dim=8,
            predictor_lr=mult), seed=0)
        model = trainer.model
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        paths = model.online.candidates(0, 0)[:4]
        trainer.train_block(0, lambda rng: (0, []), lambda start, paths=paths: paths)
        moved[mult] = {n: float((p.detach() - before[n]).norm()) for n, p in model.named_parameters()
                       if p.requires_grad and not torch.equal(p.detach(), before[n])}
    head = [n for n in moved[1.0] if n.startswith("predictors.0.")]
    rest = [n for n in moved[1.0] if not n.startswith("predictors.")]
    assert len(head) == 6 and any(n.startswith("online.") for n in rest) and set(moved[5.0]) == set(moved[1.0])
    for name in head:
        assert moved[5.0][name] == pytest.approx(5.0 * moved[1.0][name], rel=1e-3)
    for name in rest:
        assert moved[5.0][name] == pytest.approx(moved[1.0][name], rel=1e-3)


def test_projector_bn_centres_every_projection_over_the_batch():
    """``projector_bn``: the projector ends in an affine-free BN, so in training its outputs have zero batch mean
    and unit variance per dimension (a common direction is gone); without it they share a mean."""
    from nas.evaluators.supernet._necks import Projector

    torch.manual_seed(0)
    x = torch.relu(torch.randn(32, 16, 4, 4)) + 1.0  # features with a large common part, as after ReLU
    plain, centred = Projector([16], 32, 8, resample=False), Projector([16], 32, 8, resample=False, last_bn=True)
    centred.load_state_dict(plain.state_dict(), strict=False)
    assert not list(centred.mlp[-1].parameters())  # no affine: the BN cannot learn the common direction back
    out = centred(x, 0)
    torch.testing.assert_close(out.mean(0), torch.zeros(8), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.var(0, unbiased=False), torch.ones(8), atol=1e-3, rtol=0)
    assert batch_cosine(out) < 0.05 < batch_cosine(plain(x, 0))
    assert isinstance(_tiny_siamese().online_necks[0].mlp[-1], torch.nn.Linear)
    model = Siamese(lambda: Supernet(SupernetConfig((16, 32, 64, 128), 8, 8, (1, 32, 32))), 16, 8,
                    projector_bn=True)
    assert all(isinstance(n.mlp[-1], torch.nn.BatchNorm1d) for n in [*model.online_necks, *model.target_necks])


def _table(pred: np.ndarray, target: np.ndarray) -> EmbeddingTable:
    entries = [(0, (i,)) for i in range(pred.shape[0])]
    return EmbeddingTable(0, entries, pred, pred, target, target)


def test_gates_pass_for_image_dependent_predictions_and_fail_for_collapsed_ones():
    rng = np.random.default_rng(0)
    unit = lambda a: a / np.linalg.norm(a, axis=-1, keepdims=True)  # noqa: E731
    targets = rng.standard_normal((8, 64, 16))
    # healthy: each entry predicts the shared per-image target, more or less precisely (a real ranking)
    noise = np.geomspace(0.05, 5.0, 8).reshape(8, 1, 1)
    center = targets.mean(0, keepdims=True)
    healthy = unit(center + noise * rng.standard_normal((8, 64, 16)))
    gates = rating_gates(_table(healthy, targets))
    assert gates["pred_batch_cos"] < 0.9 and gates["rating_reproducibility"] > 0.9 and not gate_failures(0, gates)
    # collapsed: every entry answers every image with one vector (plus noise far below the signal)
    same = unit(np.repeat(rng.standard_normal((8, 1, 16)), 64, axis=1) + 1e-4 * rng.standard_normal((8, 64, 16)))
    gates = rating_gates(_table(same, targets))
    failures = gate_failures(2, gates)
    assert gates["pred_batch_cos"] > 0.99 and any("block 3: predictions' batch cosine" in f for f in failures)
    tied = rating_gates(_table(np.repeat(healthy[:1], 8, axis=0), targets))
    assert any("tied" in f for f in gate_failures(0, tied))


def test_pooled_scores_are_distances_to_the_center_of_all_entries():
    rng = np.random.default_rng(5)
    unit = lambda a: a / np.linalg.norm(a, axis=-1, keepdims=True)  # noqa: E731
    table = _table(unit(rng.standard_normal((5, 6, 4))), rng.standard_normal((5, 6, 4)))
    expected = [table.distance(e, range(5)) for e in table.entries]
    np.testing.assert_allclose(table.pooled_scores(), expected, atol=1e-6)
    half = table.subset(np.arange(3))
    assert half.pred1.shape == (5, 3, 4) and half.entries == table.entries


def test_views_are_seeded_stay_in_range_and_keep_their_content():
    from nas.evaluators.supernet._views import Views

    gen = torch.Generator().manual_seed(7)
    x = torch.rand(6, 3, 32, 32, generator=gen) * 4 - 2  # normalised images in [-2, 2]
    a, b = Views(-2.0, 2.0, seed=3), Views(-2.0, 2.0, seed=3)
    va, vb = a.view(x, "B"), b.view(x, "B")
    assert torch.equal(va, vb) and va.shape == x.shape
    assert float(va.min()) >= -2.0 - 1e-5 and float(va.max()) <= 2.0 + 1e-5
    assert not torch.equal(a.view(x, "A"), va)  # the stream moves on
    full = Views(-2.0, 2.0, seed=3, min_crop=1.0)
    plain = x.clone()
    plain[:] = x.mean((1, 2, 3), keepdim=True)  # constant images stay constant under crops and blur
    assert torch.allclose(full.view(plain, "A").std((2, 3)), torch.zeros(6, 3), atol=0.05)
    with pytest.raises(ValueError, match="min_crop"):
        Views(-2.0, 2.0, min_crop=0.0)


def _tiny_data(n: int = 12) -> ArrayDataset:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 1, 32, 32)).astype(np.float32)
    y = np.arange(n, dtype=np.int64) % 2
    return ArrayDataset("tiny", x, y, x[::-1].copy(), y, x, y, 2)


def test_rating_views_are_image_major_pairs_and_one_pair_is_the_old_draw(monkeypatch):
    """Several fixed view pairs per rating image: rows i*k .. i*k+k-1 are image i's (so the reproducibility
    gate's halves split images), each pair a fresh draw; one pair draws exactly what a single view pair did."""
    cfg = SupernetConfig((16, 32, 64, 128), 8, 8, (1, 32, 32))
    data = _tiny_data()
    one = BlockwiseTrainer(lambda: Supernet(cfg), data, BootstrapConfig(rating_samples=4, bn_batch=4), seed=3)
    three = BlockwiseTrainer(lambda: Supernet(cfg), data, BootstrapConfig(rating_samples=4, rating_views=3,
                                                                         bn_batch=4), seed=3)
    assert one.view1.shape[0] == 4 and three.view1.shape[0] == 12 and three.view2.shape[0] == 12
    torch.testing.assert_close(three.view1[0], one.view1[0])  # the first draw of image 0 is the same view
    torch.testing.assert_close(three.view2[0], one.view2[0])
    assert not torch.equal(three.view1[0], three.view1[1])  # image 0's second pair is another draw

    monkeypatch.setattr(Views, "view", lambda self, x, family: x.clone())  # views = the images themselves
    plain = BlockwiseTrainer(lambda: Supernet(cfg), data, BootstrapConfig(rating_samples=4, rating_views=3,
                                                                         bn_batch=4), seed=3)
    images = torch.from_numpy(data.valid_x[:4])
    for i in range(4):
        for v in range(3):
            torch.testing.assert_close(plain.view1[i * 3 + v], images[i])
            torch.testing.assert_close(plain.view2[i * 3 + v], images[i])

"""The training loss weighs only the heads a space declares auxiliary classifiers (role ``aux_classifier``):
NASNet's ``aux_logits`` adds 0.4 x its cross-entropy; other extra outputs (a dense map, a vector that is not
over the main head's classes, a head merely named ``aux...``) add nothing, in the torch and the JAX loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nas.backends.training import TrainConfig
from nas.core.ir import AUX_CLASSIFIER, ArchSpec, GraphBuilder
from nas.data.base import ArrayDataset
from nas.spaces.nasnet import NASNetSpace
from nas.testing.parity import without_stochastic

CLASSES = 3
AUX_WEIGHT = 0.4


def _data(shape: tuple[int, ...], n: int = 8) -> ArrayDataset:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, *shape)).astype(np.float32)
    y = (np.arange(n) % CLASSES).astype(np.int64)
    return ArrayDataset("random", x, y, x, y, x, y, CLASSES)


def _multi_head_arch() -> ArchSpec:
    """Main ``logits``, a declared auxiliary classifier, and three heads that are not: a dense map (``seg``), a
    vector of the classes' size with another meaning (``embedding``) and an undeclared ``aux_probe``."""
    g = GraphBuilder()
    x = g.input((2, 4, 4))
    x = g.add("act", g.add("batchnorm", g.add("conv2d", x, out_channels=4, kernel=3, padding=1)), fn="relu")
    pooled = g.add("global_avg_pool", x)
    heads = {"logits": g.add("linear", pooled, out_features=CLASSES, name="fc"),
             "aux_logits": g.add("linear", pooled, out_features=CLASSES, name="aux_fc"),
             "seg": g.add("conv2d", x, out_channels=5, kernel=1, name="seg"),
             "embedding": g.add("linear", pooled, out_features=CLASSES, name="embed"),
             "aux_probe": g.add("linear", pooled, out_features=CLASSES, name="probe")}
    return g.build(heads, {"aux_logits": AUX_CLASSIFIER})


def _nasnet_arch() -> ArchSpec:
    space = NASNetSpace(preset="cifar", cells_per_stack=1, filters=8, input_shape=[3, 16, 16], num_classes=CLASSES)
    return without_stochastic(space.decode(space.sample(0)))


def _train_outputs(arch: ArchSpec, backend: str, data: ArrayDataset, seed: int) -> dict[str, np.ndarray]:
    """Every head's train-mode output on the whole training split, for the weights the loop starts from."""
    if backend == "torch":
        from nas.backends.torch import build

        model = build(arch, seed=seed).train()
        with torch.no_grad():
            return {k: v.numpy() for k, v in model(torch.from_numpy(data.train_x)).items()}
    from nas.backends.jax import build

    model = build(arch, seed=seed)
    model.train()
    return {k: np.asarray(v) for k, v in model(data.train_x).items()}


def _ce(logits: np.ndarray, y: np.ndarray) -> float:
    return float(F.cross_entropy(torch.tensor(logits, dtype=torch.float64), torch.from_numpy(y)))


def _first_step_loss(arch: ArchSpec, backend: str, data: ArrayDataset, config: TrainConfig) -> float:
    if backend == "torch":
        from nas.backends.torch.train import train
    else:
        from nas.backends.jax.train import train
    return train(arch, data, config)["train_loss"]


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_only_declared_aux_classifiers_add_loss(backend: str) -> None:
    arch = _multi_head_arch()
    assert arch.heads_with_role(AUX_CLASSIFIER) == ("aux_logits",)
    data = _data((2, 4, 4))
    config = TrainConfig(epochs=1, batch_size=len(data.train_x), seed=1, aux_weight=AUX_WEIGHT)
    out = _train_outputs(arch, backend, data, config.seed)
    assert out["seg"].shape == (len(data.train_x), 5, 4, 4)
    want = _ce(out["logits"], data.train_y) + AUX_WEIGHT * _ce(out["aux_logits"], data.train_y)
    assert _first_step_loss(arch, backend, data, config) == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_nasnet_loss_is_main_plus_weighted_aux_cross_entropy(backend: str) -> None:
    """The torch loop's first loss; for JAX the loop's ``loss_of`` with the arch's declared heads (compiling
    a NASNet train step takes minutes on a CPU; the loop's use of the roles is tested above)."""
    arch = _nasnet_arch()
    assert arch.heads_with_role(AUX_CLASSIFIER) == ("aux_logits",)
    data = _data(arch.input_shape)
    config = TrainConfig(epochs=1, batch_size=len(data.train_x), seed=2, aux_weight=AUX_WEIGHT)
    out = _train_outputs(arch, backend, data, config.seed)
    main = _ce(out["logits"], data.train_y)
    want = main + AUX_WEIGHT * _ce(out["aux_logits"], data.train_y)
    assert want > main * 1.1
    if backend == "torch":
        got = _first_step_loss(arch, backend, data, config)
    else:
        from nas.backends.jax.train import loss_of

        got = float(loss_of(out, data.train_y, AUX_WEIGHT, aux_heads=arch.heads_with_role(AUX_CLASSIFIER)))
    assert got == pytest.approx(want, rel=1e-5)


def test_roles_name_outputs_and_known_roles() -> None:
    g = GraphBuilder()
    x = g.add("global_avg_pool", g.input((2, 4, 4)))
    logits = g.add("linear", x, out_features=CLASSES)
    with pytest.raises(ValueError, match="not an output"):
        g.build({"logits": logits}, {"aux_logits": AUX_CLASSIFIER})
    with pytest.raises(ValueError, match="unknown head role"):
        g.build({"logits": logits}, {"logits": "segmentation"})


def test_pruned_networks_keep_the_roles_of_their_heads() -> None:
    """``nas train task=logits`` trains ``task_arch``'s pruning: the auxiliary classifier keeps its role."""
    from nas.export.exporters import prune_outputs, task_arch

    arch = _multi_head_arch()
    assert task_arch(arch, "logits").roles == (("aux_logits", AUX_CLASSIFIER),)
    assert prune_outputs(arch, ["logits", "seg"]).roles == ()


def test_costs_and_inference_leave_out_only_declared_aux_classifiers() -> None:
    """The role, not the name, decides what is training-only: ``aux_probe`` counts and is kept for inference,
    the declared ``aux_logits`` is excluded from params/macs and dropped from the eval-mode torch network."""
    from nas.backends.torch import build
    from nas.core.cost import arch_cost
    from nas.export.exporters import inference_heads

    arch = _multi_head_arch()
    cost = arch_cost(arch)
    fc = 4 * CLASSES + CLASSES
    assert cost["params_with_aux"] - cost["params"] == fc
    assert inference_heads(arch) == ["logits", "seg", "embedding", "aux_probe"]
    model = build(arch, seed=0).eval()
    with torch.no_grad():
        out = model(torch.zeros(2, 2, 4, 4))
    assert set(out) == {"logits", "seg", "embedding", "aux_probe"}

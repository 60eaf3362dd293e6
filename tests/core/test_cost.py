"""The analytic cost counts the main network; auxiliary heads are reported separately."""

import torch

from nas.backends import torch as torch_backend
from nas.core import GraphBuilder, arch_cost
from nas.core.cost import aux_only_nodes, main_head
from nas.core.ir import AUX_CLASSIFIER


def _two_heads(main: str = "logits"):
    g = GraphBuilder()
    x = g.input((3, 8, 8))
    trunk = g.add("conv2d", x, out_channels=4, kernel=3, padding=1, name="trunk")
    aux = g.add("conv2d", trunk, out_channels=2, kernel=1, name="aux_conv")
    aux = g.add("linear", g.add("global_avg_pool", aux, name="aux_pool"), out_features=5, name="aux_fc")
    out = g.add("linear", g.add("global_avg_pool", trunk, name="pool"), out_features=5, name="fc")
    return g.build({"aux_logits": aux, main: out}, {"aux_logits": AUX_CLASSIFIER})


def test_aux_head_is_left_out_of_params_and_macs() -> None:
    arch = _two_heads()
    trunk, fc = 4 * 3 * 9, 4 * 5 + 5
    aux_conv, aux_fc = 2 * 4, 2 * 5 + 5
    assert main_head(arch) == "logits"
    assert aux_only_nodes(arch) == {"aux_conv", "aux_pool", "aux_fc"}
    assert arch_cost(arch) == {
        "params": trunk + fc, "macs": trunk * 64 + 4 * 5,
        "params_with_aux": trunk + fc + aux_conv + aux_fc, "macs_with_aux": trunk * 64 + 4 * 5 + aux_conv * 64 + 2 * 5}


def test_with_aux_is_what_the_backend_builds() -> None:
    arch = _two_heads()
    model = torch_backend.build(arch, seed=0)
    assert torch_backend.count_params(model) == arch_cost(arch)["params_with_aux"]
    assert set(model(torch.randn(1, 3, 8, 8))) == {"logits", "aux_logits"}


def test_eval_mode_neither_runs_nor_returns_aux_heads() -> None:
    arch = _two_heads()
    model = torch_backend.build(arch, seed=0)
    ran = []
    model.layers["aux_conv"].register_forward_hook(lambda *args: ran.append(True))
    x = torch.randn(2, 3, 8, 8)
    train_out = model(x)
    assert set(train_out) == {"logits", "aux_logits"} and ran == [True]
    model.eval()
    eval_out = model(x)
    assert set(eval_out) == {"logits"} and ran == [True]
    assert torch.equal(eval_out["logits"], train_out["logits"])  # no BN or dropout in this network
    assert set(model.train()(x)) == {"logits", "aux_logits"}


def test_without_aux_heads_every_head_counts() -> None:
    g = GraphBuilder()
    out = g.add("linear", g.add("global_avg_pool", g.input((2, 4, 4))), out_features=3)
    assert set(arch_cost(g.build({"y": out}))) == {"params", "macs"}
    g = GraphBuilder()
    trunk = g.add("conv2d", g.input((3, 8, 8)), out_channels=4, kernel=3, padding=1, name="trunk")
    seg = g.add("conv2d", trunk, out_channels=2, kernel=1, name="seg")
    cls = g.add("linear", g.add("global_avg_pool", trunk, name="pool"), out_features=5, name="fc")
    multitask = g.build({"seg": seg, "logits": cls})
    assert main_head(multitask) == "logits" and not aux_only_nodes(multitask)
    trunk, seg_conv, fc = 4 * 3 * 9, 2 * 4, 4 * 5
    assert arch_cost(multitask) == {"params": trunk + seg_conv + fc + 5, "macs": (trunk + seg_conv) * 64 + fc}
    arch = _two_heads(main="scores")
    assert arch_cost(arch)["params"] == 4 * 3 * 9 + 4 * 5 + 5

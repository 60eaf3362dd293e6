"""NASNet macro-architecture: stems, cell stacking, reduction placement, auxiliary head, presets.

As the TF-Slim reference (``nasnet.py``): ``3N`` normal cells with reduction cells inserted before
normal cells ``int(k / (R + 1) * 3N)`` for k = 1..R; the cell width ``F_cell`` doubles at each
reduction. The CIFAR stem is a 3x3 conv (``F * stem_multiplier`` filters) + BN; the ImageNet stem
is a stride-2 VALID 3x3 conv (``32 * stem_multiplier``) + BN and two reduction cells at F/4 and F/2.
h_{i-1} of a cell is the output two cells back (reduction cells count); with
``skip_reduction_layer_input`` (Large) the cell after a reduction reads the reduction's own
h_{i-1} instead. The auxiliary head (``aux_logits``, role ``aux_classifier``) reads the last normal cell
before the second reduction; the classifier is ReLU -> global average pool -> dropout -> linear.

Batch norm follows the reference's arg scopes, per preset (macro ``bn_eps``, ``bn_momentum`` in torch's
convention, momentum = 1 - TF decay): CIFAR eps 1e-5, decay 0.9 (momentum 0.1); Mobile and Large eps 1e-3,
decay 0.9997 (momentum 3e-4). A genotype without these settings gets torch's defaults (1e-5, 0.1).

Weights follow the same arg scopes (all three presets): ``slim.variance_scaling_initializer(mode='FAN_OUT')``
for ``conv2d``, ``separable_conv2d`` (depthwise and pointwise kernels) and ``fully_connected``, i.e. init
``tf_slim_fan_out`` on every conv2d and linear node (``nas.ops.INITS``); convs have no bias, the
classifiers' biases start at zero.
"""

from __future__ import annotations

from typing import Any

from nas.core.ir import AUX_CLASSIFIER, ArchSpec, GraphBuilder
from nas.spaces.nasnet.cell import LOOSE_END, Cell, build_cell
from nas.spaces.nasnet.droppath import layer_drop_rate

_COMMON = {"num_reductions": 2, "num_classes": 10, "normal_concat": LOOSE_END, "reduce_concat": LOOSE_END}
_CIFAR_BN = {"bn_eps": 1e-5, "bn_momentum": 0.1}  # TF-Slim nasnet_cifar_arg_scope: decay 0.9
_IMAGENET_BN = {"bn_eps": 1e-3, "bn_momentum": 3e-4}  # nasnet_{mobile,large}_arg_scope: decay 0.9997
# Every nasnet_*_arg_scope: weights_initializer = slim.variance_scaling_initializer(mode='FAN_OUT').
WEIGHT_INIT = "tf_slim_fan_out"

PRESETS: dict[str, dict[str, Any]] = {
    # NASNet-A 6@768 on CIFAR-10 (cifar_config).
    "cifar": {**_COMMON, **_CIFAR_BN, "stem": "cifar", "cells_per_stack": 6, "filters": 32, "stem_multiplier": 3.0,
              "skip_reduction_layer_input": False, "aux_head": True, "drop_path_keep": 0.6,
              "dense_dropout": 0.0, "input_shape": [3, 32, 32]},
    # NASNet-A 4@1056, ImageNet 224 (mobile_imagenet_config).
    "mobile": {**_COMMON, **_IMAGENET_BN, "stem": "imagenet", "cells_per_stack": 4, "filters": 44,
               "stem_multiplier": 1.0,
               "skip_reduction_layer_input": False, "aux_head": True, "drop_path_keep": 1.0,
               "dense_dropout": 0.5, "input_shape": [3, 224, 224], "num_classes": 1000},
    # NASNet-A 6@4032, ImageNet 331 (large_imagenet_config).
    "large": {**_COMMON, **_IMAGENET_BN, "stem": "imagenet", "cells_per_stack": 6, "filters": 168,
              "stem_multiplier": 3.0,
              "skip_reduction_layer_input": True, "aux_head": True, "drop_path_keep": 0.7,
              "dense_dropout": 0.5, "input_shape": [3, 331, 331], "num_classes": 1000},
    # The cheapest faithful CPU variant (spec 1.10): same encoding, N=1, F=8, no auxiliary head.
    "small": {**_COMMON, **_CIFAR_BN, "stem": "cifar", "cells_per_stack": 1, "filters": 8, "stem_multiplier": 3.0,
              "skip_reduction_layer_input": False, "aux_head": False, "drop_path_keep": 0.6,
              "dense_dropout": 0.0, "input_shape": [3, 32, 32]},
}

STEMS = ("cifar", "imagenet")
IMAGENET_STEM_FILTERS = 32
NUM_STEM_CELLS = 2


def reduction_indices(num_cells: int, num_reductions: int) -> list[int]:
    """Normal-cell indices before which a reduction cell goes (reference ``calc_reduction_layers``)."""
    return [int(float(k) / (num_reductions + 1) * num_cells) for k in range(1, num_reductions + 1)]


def total_cells(macro: dict[str, Any]) -> int:
    """All cells of the network (stem cells included): the ``num_cells`` of ScheduledDropPath."""
    stem_cells = NUM_STEM_CELLS if macro["stem"] == "imagenet" else 0
    return 3 * int(macro["cells_per_stack"]) + int(macro["num_reductions"]) + stem_cells


def _aux_head(g: GraphBuilder, x: str, num_classes: int) -> str:
    with g.scope("aux"):
        x = g.add("act", x, fn="relu", name="relu0")
        x = g.add("avg_pool", x, kernel=5, stride=3, padding=0, count_include_pad=True, name="pool")
        x = g.add("conv2d", x, out_channels=128, kernel=1, name="proj")
        x = g.add("batchnorm", x, name="bn0")
        x = g.add("act", x, fn="relu", name="relu1")
        _, h, w = g.shape(x)
        x = g.add("conv2d", x, out_channels=768, kernel=(h, w), name="conv")
        x = g.add("batchnorm", x, name="bn1")
        x = g.add("act", x, fn="relu", name="relu2")
        x = g.add("global_avg_pool", x, name="flatten")
        return g.add("linear", x, out_features=num_classes, name="fc")


def build_network(normal: Cell, reduce: Cell, macro: dict[str, Any]) -> ArchSpec:
    """The whole NASNet for two cells and the macro settings; heads ``logits`` (+ ``aux_logits``)."""
    g = GraphBuilder()
    bn = {"eps": float(macro.get("bn_eps", 1e-5)), "momentum": float(macro.get("bn_momentum", 0.1))}
    with g.defaults("batchnorm", **bn), g.defaults("conv2d", init=WEIGHT_INIT), g.defaults("linear", init=WEIGHT_INIT):
        return _build(g, normal, reduce, macro)


def _build(g: GraphBuilder, normal: Cell, reduce: Cell, macro: dict[str, Any]) -> ArchSpec:
    n, f = int(macro["cells_per_stack"]), int(macro["filters"])
    num_cells = 3 * n
    reductions = reduction_indices(num_cells, int(macro["num_reductions"]))
    all_cells, keep = total_cells(macro), float(macro["drop_path_keep"])
    x = g.input(tuple(macro["input_shape"]))
    cell_index = 0

    def rate() -> float:
        return layer_drop_rate(cell_index, all_cells, keep) if keep < 1.0 else 0.0

    with g.scope("stem"):
        if macro["stem"] == "cifar":
            x = g.add("conv2d", x, out_channels=int(f * macro["stem_multiplier"]), kernel=3, padding=1, name="conv")
        else:
            x = g.add("conv2d", x, out_channels=int(IMAGENET_STEM_FILTERS * macro["stem_multiplier"]), kernel=3,
                      stride=2, name="conv")
        x = g.add("batchnorm", x, name="bn")
    outputs: list[str | None] = [None, x]
    if macro["stem"] == "imagenet":
        scaling = 1.0 / 2**NUM_STEM_CELLS
        for k in range(NUM_STEM_CELLS):
            with g.scope(f"stem_cell{k}"):
                x = build_cell(g, x, outputs[-2], reduce, int(f * scaling), True, rate())
            outputs.append(x)
            cell_index += 1
            scaling *= 2
    scaling, aux = 1.0, None
    aux_after = reductions[1] - 1 if len(reductions) >= 2 and macro["aux_head"] else None
    prev: str | None = None
    for k in range(num_cells):
        if macro["skip_reduction_layer_input"]:
            prev = outputs[-2]
        if k in reductions:
            scaling *= 2
            with g.scope(f"reduction{reductions.index(k)}"):
                x = build_cell(g, x, outputs[-2], reduce, int(f * scaling), True, rate())
            outputs.append(x)
            cell_index += 1
        if not macro["skip_reduction_layer_input"]:
            prev = outputs[-2]
        with g.scope(f"cell{k}"):
            x = build_cell(g, x, prev, normal, int(f * scaling), False, rate())
        outputs.append(x)
        cell_index += 1
        if k == aux_after:
            aux = _aux_head(g, x, int(macro["num_classes"]))
    with g.scope("head"):
        x = g.add("act", x, fn="relu", name="relu")
        x = g.add("global_avg_pool", x, name="pool")
        if float(macro["dense_dropout"]) > 0:
            x = g.add("dropout", x, rate=float(macro["dense_dropout"]), name="dropout")
        x = g.add("linear", x, out_features=int(macro["num_classes"]), name="classifier")
    heads, roles = {"logits": x}, {}
    if aux is not None:  # the reference's AuxLogits: a classifier of the same labels (loss weight 0.4)
        heads["aux_logits"], roles["aux_logits"] = aux, AUX_CLASSIFIER
    return g.build(heads, roles)

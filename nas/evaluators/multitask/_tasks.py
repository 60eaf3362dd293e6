"""Task losses and decoding of the FBNetV5 heads: classification, segmentation, FCOS-style detection.

- Classification: cross-entropy of the logits (N, C).
- Segmentation: per-pixel cross-entropy over C + 1 classes (0 = background). The head predicts at a
  lower resolution than the labels; its logits are upsampled bilinearly to the label size before the
  loss (the labels are never downsampled, so thin items keep their pixels), and predictions are the
  argmax of the upsampled logits.
- Detection (FCOS, Tian et al. 2019, one-stage and anchor-free): each level of stride s predicts, at
  every location (s*j + s//2, s*i + s//2), C class logits, 4 box distances (left, top, right, bottom)
  and one centerness logit. Targets: a location is positive for a box when it lies inside the box and
  the box's largest distance m = max(l, t, r, b) falls in the level's range; of several such boxes the
  smallest wins. Ranges scale FCOS's (0, 64], (64, 128] ... (8x the stride of P3 at 800 px) down to
  small canvases: level k with stride s_k takes m in (2 s_{k-1}, 2 s_k], the first level from 0 and the
  last to infinity, so on a 64-pixel canvas with strides 8/16/32 the items of 16-32 pixels spread over
  the 1/8 and 1/16 levels. Losses: sigmoid focal loss (alpha 0.25, gamma 2) over all locations, GIoU
  loss of the decoded boxes and BCE of centerness on the positives, each divided by the number of
  positives. Box distances are ``exp(x) * s`` (positive, scale-normalised per level). As in FCOS
  (and RetinaNet), the class convs start with bias -log((1 - 0.01) / 0.01), so every location first
  predicts background with probability 0.99 and the focal loss does not start dominated by negatives.
- Decoding: score = sqrt(sigmoid(class) * sigmoid(centerness)) (FCOS's test-time score), threshold
  0.05, 100 best per level, then per-class greedy NMS at IoU 0.6 (plain torch; torchvision is not a
  dependency) and the 100 best detections per image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional

FOCAL_ALPHA, FOCAL_GAMMA = 0.25, 2.0
SCORE_THRESHOLD, NMS_IOU, TOP_PER_LEVEL, MAX_DETECTIONS = 0.05, 0.6, 100, 100
MAX_LOG_DISTANCE = 8.0
PRIOR = 0.01


def set_class_prior(network: torch.nn.Module) -> None:
    """Set the class logits' bias of every ``det.*.cls`` output of a ``TorchNetwork`` to the FCOS prior (the
    output is a conv, or a channel slice of the conv that predicts class, box and centerness together)."""
    from nas.backends.torch.builder import module_key

    arch = getattr(network, "arch", None)
    if arch is None:
        return
    nodes = {node.name: node for node in arch.nodes}
    for head, name in arch.outputs:
        if head.startswith("det.") and head.endswith(".cls"):
            node, channels = nodes[name], slice(None)
            if node.op == "channel_slice":
                channels, node = slice(node.p["start"], node.p["stop"]), nodes[node.inputs[0]]
            conv = network.layers[module_key(node.name)]
            with torch.no_grad():
                conv.bias[channels] = -float(np.log((1 - PRIOR) / PRIOR))


def classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of class logits (N, C) against labels (N,)."""
    return functional.cross_entropy(logits, labels)


def upsample_to(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear upsampling of (N, K, h, w) logits to the label size (H, W)."""
    if tuple(logits.shape[2:]) == tuple(size):
        return logits
    return functional.interpolate(logits, size=size, mode="bilinear", align_corners=False)


def segmentation_loss(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Per-pixel cross-entropy of (N, C + 1, h, w) logits, upsampled, against (N, H, W) masks."""
    return functional.cross_entropy(upsample_to(logits, tuple(masks.shape[1:])), masks)


def segmentation_predict(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Per-pixel classes (N, H, W) from head logits."""
    return upsample_to(logits, size).argmax(1)


@dataclass(frozen=True)
class Level:
    """One detection level: its stride and feature size."""

    stride: int
    height: int
    width: int

    def centers(self) -> np.ndarray:
        """(h * w, 2) pixel coordinates (x, y) of the level's locations, row-major."""
        ys, xs = np.meshgrid(np.arange(self.height), np.arange(self.width), indexing="ij")
        return np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float32) * self.stride + self.stride // 2


def level_ranges(levels: Sequence[Level]) -> list[tuple[float, float]]:
    """The (low, high] range of the largest box distance assigned to each level (see the module docstring)."""
    bounds = [0.0] + [2.0 * lv.stride for lv in levels[:-1]] + [float("inf")]
    return list(zip(bounds[:-1], bounds[1:]))


@dataclass(frozen=True)
class DetectionTargets:
    """FCOS targets of a set of images over all levels' locations (concatenated in level order)."""

    classes: torch.Tensor  # (N, L) int64, -1 = background
    distances: torch.Tensor  # (N, L, 4) float32 l, t, r, b in pixels (0 for background)
    centerness: torch.Tensor  # (N, L) float32 (0 for background)

    def take(self, index: torch.Tensor) -> DetectionTargets:
        return DetectionTargets(self.classes[index], self.distances[index], self.centerness[index])

    def to(self, device: torch.device | str) -> DetectionTargets:
        return DetectionTargets(self.classes.to(device), self.distances.to(device), self.centerness.to(device))


def fcos_targets(boxes: Sequence[np.ndarray], classes: Sequence[np.ndarray], levels: Sequence[Level]
                 ) -> DetectionTargets:
    """Targets of each image (its boxes (k, 4) xyxy and classes (k,)) at every location of ``levels``."""
    centers = np.concatenate([lv.centers() for lv in levels])
    low = np.concatenate([np.full(lv.height * lv.width, r[0]) for lv, r in zip(levels, level_ranges(levels))])
    high = np.concatenate([np.full(lv.height * lv.width, r[1]) for lv, r in zip(levels, level_ranges(levels))])
    n, count = len(boxes), len(centers)
    out_cls = np.full((n, count), -1, dtype=np.int64)
    out_dist = np.zeros((n, count, 4), dtype=np.float32)
    out_ctr = np.zeros((n, count), dtype=np.float32)
    for i, (b, c) in enumerate(zip(boxes, classes)):
        b = np.asarray(b, dtype=np.float32).reshape(-1, 4)
        if not len(b):
            continue
        x, y = centers[:, :1], centers[:, 1:]
        dist = np.stack([x - b[:, 0], y - b[:, 1], b[:, 2] - x, b[:, 3] - y], -1)  # (L, k, 4)
        largest = dist.max(-1)
        ok = (dist.min(-1) > 0) & (largest > low[:, None]) & (largest <= high[:, None])
        area = np.where(ok, ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))[None, :], np.inf)
        best = area.argmin(1)
        positive = np.isfinite(area.min(1))
        chosen = dist[np.arange(count), best]
        out_cls[i, positive] = np.asarray(c, dtype=np.int64)[best[positive]]
        out_dist[i, positive] = chosen[positive]
        lr, tb = chosen[positive][:, [0, 2]], chosen[positive][:, [1, 3]]
        out_ctr[i, positive] = np.sqrt((lr.min(1) / lr.max(1)) * (tb.min(1) / tb.max(1)))
    return DetectionTargets(torch.from_numpy(out_cls), torch.from_numpy(out_dist), torch.from_numpy(out_ctr))


def flatten_levels(outputs: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], strides: Sequence[int]
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-level (class (N, C, h, w), box (N, 4, h, w), centerness (N, 1, h, w)) as (N, L, C), distances
    (N, L, 4) in pixels and centerness logits (N, L), locations row-major, levels in order."""
    cls, dist, ctr = [], [], []
    for (c, b, m), stride in zip(outputs, strides):
        cls.append(c.flatten(2).transpose(1, 2))
        dist.append(torch.exp(b.flatten(2).transpose(1, 2).clamp(max=MAX_LOG_DISTANCE)) * stride)
        ctr.append(m.flatten(1))
    return torch.cat(cls, 1), torch.cat(dist, 1), torch.cat(ctr, 1)


def sigmoid_focal_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Summed focal loss (Lin et al. 2017) of sigmoid logits against 0/1 targets."""
    p = torch.sigmoid(logits)
    ce = functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    alpha_t = FOCAL_ALPHA * targets + (1 - FOCAL_ALPHA) * (1 - targets)
    return (alpha_t * ce * (1 - p_t) ** FOCAL_GAMMA).sum()


def giou_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - GIoU of boxes given as distances (l, t, r, b) from the same location, per row."""
    pl, pt, pr, pb = pred.unbind(-1)
    tl, tt, tr, tb = target.unbind(-1)
    inter = (torch.minimum(pl, tl) + torch.minimum(pr, tr)) * (torch.minimum(pt, tt) + torch.minimum(pb, tb))
    union = (pl + pr) * (pt + pb) + (tl + tr) * (tt + tb) - inter
    hull = (torch.maximum(pl, tl) + torch.maximum(pr, tr)) * (torch.maximum(pt, tt) + torch.maximum(pb, tb))
    iou = inter / union.clamp(min=1e-6)
    return 1 - (iou - (hull - union) / hull.clamp(min=1e-6))


def detection_loss(outputs: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], strides: Sequence[int],
                   targets: DetectionTargets) -> torch.Tensor:
    """FCOS loss: focal class loss + GIoU box loss + centerness BCE, each per positive location."""
    cls, dist, ctr = flatten_levels(outputs, strides)
    positive = targets.classes >= 0
    count = max(int(positive.sum()), 1)
    onehot = torch.zeros_like(cls)
    onehot[positive] = functional.one_hot(targets.classes[positive], cls.shape[-1]).to(cls.dtype)
    loss = sigmoid_focal_loss(cls, onehot) / count
    if positive.any():
        loss = loss + giou_loss(dist[positive], targets.distances[positive]).sum() / count
        loss = loss + functional.binary_cross_entropy_with_logits(ctr[positive], targets.centerness[positive],
                                                                  reduction="sum") / count
    return loss


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU (n, m) of xyxy boxes."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area = lambda x: (x[:, 2] - x[:, 0]).clamp(min=0) * (x[:, 3] - x[:, 1]).clamp(min=0)
    return inter / (area(a)[:, None] + area(b)[None, :] - inter).clamp(min=1e-6)


def nms(boxes: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor, iou: float = NMS_IOU) -> torch.Tensor:
    """Indices kept by greedy per-class non-maximum suppression, best score first.

    Vectorised (torchvision's ``batched_nms`` cannot be imported beside this torch build): the greedy rule
    "keep a box unless a kept, higher-scoring box of its class overlaps it by more than ``iou``" is a fixed
    point, reached by applying it to the whole keep mask at once. Each pass settles at least the next box in
    score order, so it ends within as many passes as the longest chain of suppressions (a few in practice).
    """
    order = scores.argsort(descending=True)
    boxes, classes = boxes[order], classes[order]
    suppress = (box_iou(boxes, boxes) > iou) & (classes[:, None] == classes[None, :])
    suppress = torch.triu(suppress, diagonal=1)  # only a better-scoring box suppresses
    keep = torch.ones(len(order), dtype=torch.bool)
    for _ in range(len(order)):
        settled = ~(suppress & keep[:, None]).any(0)
        if torch.equal(settled, keep):
            break
        keep = settled
    return order[keep]


def decode_detections(outputs: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], levels: Sequence[Level],
                      image_size: tuple[int, int]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Detections (boxes xyxy clipped to the image, scores, classes) per image, ready for ``coco_map``."""
    cls, dist, ctr = flatten_levels(outputs, [lv.stride for lv in levels])
    centers = torch.from_numpy(np.concatenate([lv.centers() for lv in levels]))
    sizes = [lv.height * lv.width for lv in levels]
    score = torch.sqrt(torch.sigmoid(cls) * torch.sigmoid(ctr)[..., None])  # (N, L, C)
    height, width = image_size
    found = []
    for i in range(cls.shape[0]):
        picks = []
        start = 0
        for size in sizes:
            block = score[i, start:start + size].reshape(-1)
            top = block.topk(min(TOP_PER_LEVEL, len(block)))
            good = top.values > SCORE_THRESHOLD
            picks.append(top.indices[good] + start * cls.shape[-1])
            start += size
        flat = torch.cat(picks)
        loc, label = flat // cls.shape[-1], flat % cls.shape[-1]
        d = dist[i, loc]
        boxes = torch.stack([centers[loc, 0] - d[:, 0], centers[loc, 1] - d[:, 1],
                             centers[loc, 0] + d[:, 2], centers[loc, 1] + d[:, 3]], 1)
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
        scores = score[i].reshape(-1)[flat]
        keep = nms(boxes, scores, label)[:MAX_DETECTIONS]
        found.append((boxes[keep].numpy(), scores[keep].numpy(), label[keep].numpy()))
    return found

"""FBNetV5 multitask search: importance weights, REINFORCE, one pass for all tasks, heads' losses, a tiny run."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import torch

from nas.backends.torch import build
from nas.backends.torch.supernets.fbnetv5 import MaskCost, Supernet
from nas.data.multitask import make_canvases
from nas.evaluators.multitask import _tasks as T
from nas.evaluators.multitask._batches import levels_of, task_loss
from nas.searchers.fbnetv5._estimator import TaskDistributions
from nas.searchers.fbnetv5._search import MultitaskSearch, SearchConfig
from nas.spaces.fbnet.fbnetv5 import FBNetV5Space
from nas.spaces.fbnet.plan import fragment_cost

TASKS = ["classification", "segmentation", "detection"]


def space(tasks=TASKS, size: int = 32) -> FBNetV5Space:
    return FBNetV5Space("cpu", input_shape=[1, size, size], resolution=size, seg_classes=11, tasks=list(tasks))


@pytest.fixture(scope="module")
def data():
    return make_canvases("digits", n=48, size=32, seed=0, valid=16)


def all_masks(b: int) -> list[torch.Tensor]:
    return [torch.tensor(bits, dtype=torch.float32) for bits in itertools.product((0, 1), repeat=b)]


def bernoulli(probs: torch.Tensor, mask: torch.Tensor) -> float:
    return float(torch.prod(torch.where(mask > 0, probs, 1 - probs)))


def test_importance_weights_are_exact_on_an_enumerable_space() -> None:
    dists = TaskDistributions(["a", "b"], 3, uniform_mix=0.1)
    with torch.no_grad():
        dists.logits.copy_(torch.tensor([[2.0, -1.0, 0.5], [-3.0, 1.5, 0.0]]))
    probs = dists.probs
    masks = all_masks(3)
    q = [math.exp(float(dists.log_q(m, warm=False))) for m in masks]
    expected = [0.9 * 0.5 * (bernoulli(probs[0], m) + bernoulli(probs[1], m)) + 0.1 / 8 for m in masks]
    assert q == pytest.approx(expected, rel=1e-6) and sum(q) == pytest.approx(1.0)
    f = [float(m @ torch.tensor([1.0, 2.0, 4.0])) for m in masks]  # any function of the mask
    for t in range(2):
        r = [float(dists.weights(m, warm=False)[t]) for m in masks]
        assert r == pytest.approx([bernoulli(probs[t], m) / qa for m, qa in zip(masks, q)], rel=1e-6)
        assert max(r) <= 2 / 0.9 + 1e-9  # bounded by T / (1 - eps)
        # E_q[r_t f] = E_{p_t}[f]: the weighted one-pass estimate is unbiased for every task
        assert sum(qa * ra * fa for qa, ra, fa in zip(q, r, f)) == pytest.approx(
            sum(bernoulli(probs[t], m) * fa for m, fa in zip(masks, f)), rel=1e-6)
    fresh = TaskDistributions(["a", "b"], 3)  # during the warm-up: logits 0 and q uniform
    assert fresh.weights(masks[3], warm=True).tolist() == [1.0, 1.0]


def test_proposal_samples_follow_q() -> None:
    dists = TaskDistributions(["a", "b"], 2, uniform_mix=0.1)
    with torch.no_grad():
        dists.logits.copy_(torch.tensor([[3.0, -3.0], [-3.0, -3.0]]))
    generator = torch.Generator().manual_seed(0)
    draws = 4000
    counts = {}
    for _ in range(draws):
        key = tuple(int(v) for v in dists.sample(generator, warm=False))
        counts[key] = counts.get(key, 0) + 1
    for m in all_masks(2):
        q = math.exp(float(dists.log_q(m, warm=False)))
        assert counts.get(tuple(int(v) for v in m), 0) / draws == pytest.approx(q, abs=4 * math.sqrt(q / draws) + 1e-3)


def test_reinforce_moves_each_task_towards_its_cheaper_mask() -> None:
    """Task a pays for keeping blocks 0-1, task b for skipping them: the distributions diverge accordingly."""
    dists = TaskDistributions(["a", "b"], 3, lr=0.1, uniform_mix=0.1,
                              relevant=torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]]))
    generator = torch.Generator().manual_seed(1)
    for _ in range(400):
        mask = dists.sample(generator, warm=False)
        costs = torch.stack([mask[:2].sum() + 0.1 * mask[2], 2 - mask[:2].sum()])
        dists.reinforce(mask, costs, dists.weights(mask, warm=False))
    p = dists.probs
    assert (p[0, :3] < 0.2).all() and (p[1, :2] > 0.8).all()
    assert float(p[1, 2]) == 0.5  # not reaching task b: never updated
    assert dists.most_probable().tolist() == [[0, 0, 0], [1, 1, 0]]
    # the self-normalised baseline tracks E_{p_t}[c_t]: about 0 for both tasks by now
    assert dists.baselines().tolist() == pytest.approx([0.0, 0.0], abs=0.5)


def test_supernet_under_a_mask_is_the_decoded_network() -> None:
    sp = space()
    plan = sp.plan()
    net = Supernet(plan, seed=0).eval()
    mask = torch.tensor([i % 3 != 0 for i in range(len(plan.decisions))], dtype=torch.float32)
    genotype = sp.make({d: int(v) for d, v in zip(plan.decisions, mask.tolist())})
    decoded = build(sp.decode(genotype)).eval()
    state = {}
    for name, value in net.state_dict().items():
        kind, unit, _, rest = name.split(".", 3)  # kept|skipped . unit . layers . node.param
        if kind == "skipped" and mask[plan.decisions.index(unit.replace("/", "."))]:
            continue
        if kind == "kept" and plan.unit(unit.replace("/", ".")).decision is not None \
                and not mask[plan.decisions.index(unit.replace("/", "."))]:
            continue
        node, param = rest.rsplit(".", 1)
        state[f"layers.{unit}/{node}.{param}"] = value
    decoded.load_state_dict(state)
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        ours, theirs = net(x, mask), decoded(x)
    assert set(ours) == set(theirs)
    for head in ours:
        assert torch.allclose(ours[head], theirs[head], atol=1e-5), head


def test_mask_cost_matches_the_decoded_single_task_networks() -> None:
    sp = space()
    plan = sp.plan()
    cost = MaskCost(plan, TASKS)
    generator = torch.Generator().manual_seed(0)
    for _ in range(3):
        mask = (torch.rand(len(plan.decisions), generator=generator) < 0.5).float()
        values = {d: int(v) for d, v in zip(plan.decisions, mask.tolist())}
        for t, task in enumerate(TASKS):
            single = space([task])
            genotype = single.make({label: values[label] for label in single.spec().labels})
            assert float(cost.macs(mask)[t]) == fragment_cost(single.decode(genotype))["macs"]
    # classification never reads the 1/4 path's last block; segmentation reads every block
    assert cost.reach[1].all() and not cost.reach[0].all()


def test_one_forward_pass_yields_every_task_loss(data) -> None:
    search = MultitaskSearch(space().plan(), data, TASKS, SearchConfig(steps=4, warmup=1, batch_size=8))
    calls = []
    original = search.supernet.forward
    search.supernet.forward = lambda *a, **k: calls.append(1) or original(*a, **k)
    first = search.step()
    assert len(calls) == 1 and all(first[f"r_{t}"] == 1.0 for t in TASKS)
    for _ in range(3):  # the first REINFORCE step sets the baselines, the next ones move the logits
        later = search.step()
    assert len(calls) == 4 and all(math.isfinite(later[t]) and later[t] > 0 for t in TASKS)
    assert not torch.equal(search.dists.logits.detach(), torch.zeros_like(search.dists.logits))
    search.naive_step()
    assert len(calls) == 4 + len(TASKS)


def test_resume_from_state_continues_identically(data) -> None:
    config = SearchConfig(steps=5, warmup=2, batch_size=8)
    straight = MultitaskSearch(space().plan(), data, TASKS, config)
    for _ in range(5):
        straight.step()
    first = MultitaskSearch(space().plan(), data, TASKS, config)
    for _ in range(3):
        first.step()
    state = first.state_dict()
    resumed = MultitaskSearch(space().plan(), data, TASKS, config)
    resumed.load_state_dict(state)
    for _ in range(2):
        resumed.step()
    assert torch.allclose(resumed.dists.logits, straight.dists.logits)
    for a, b in zip(resumed.supernet.parameters(), straight.supernet.parameters()):
        assert torch.allclose(a, b)


def test_fcos_targets_and_decoding_recover_the_boxes() -> None:
    levels = [T.Level(8, 8, 8), T.Level(16, 4, 4), T.Level(32, 2, 2)]
    boxes = [np.array([[4, 6, 20, 22], [30, 10, 62, 50]], dtype=np.float32)]
    classes = [np.array([3, 7])]
    targets = T.fcos_targets(boxes, classes, levels)
    positive = targets.classes[0] >= 0
    # the 16-pixel box goes to the 1/8 level, the 40-pixel one to coarser levels
    small = targets.classes[0, :64]
    assert set(small[small >= 0].tolist()) == {3} and set(targets.classes[0, 64:][positive[64:]].tolist()) == {7}
    assert (targets.centerness[0, positive] > 0).all() and (targets.centerness[0, positive] <= 1).all()
    # outputs that predict exactly the targets decode to the ground-truth boxes
    outputs, start = [], 0
    for lv in levels:
        n = lv.height * lv.width
        cls = torch.full((1, 10, lv.height, lv.width), -10.0)
        got = targets.classes[0, start:start + n]
        flat = cls.view(10, -1)
        flat[got[got >= 0], torch.nonzero(got >= 0)[:, 0]] = 10.0
        dist = targets.distances[0, start:start + n].clamp(min=1e-3) / lv.stride
        box = torch.log(dist).T.reshape(1, 4, lv.height, lv.width)
        ctr = torch.logit(targets.centerness[0, start:start + n].clamp(1e-3, 1 - 1e-3)).reshape(1, 1, lv.height,
                                                                                             lv.width)
        outputs.append((cls, box, ctr))
        start += n
    found = T.decode_detections(outputs, levels, (64, 64))
    from nas.evaluators.metrics import coco_map

    assert coco_map(found, list(zip(boxes, classes)), 10, (64, 64))["map"] == pytest.approx(1.0)
    # the loss is then the centerness targets' own entropy (focal and GIoU terms vanish)
    loss = T.detection_loss(outputs, [lv.stride for lv in levels], targets)
    c = targets.centerness[0, positive].clamp(1e-3, 1 - 1e-3)
    entropy = float(-(c * c.log() + (1 - c) * (1 - c).log()).mean())
    assert float(loss) == pytest.approx(entropy, abs=0.02)


def test_nms_keeps_the_best_of_overlapping_boxes_per_class() -> None:
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10], [30, 30, 40, 40]], dtype=torch.float32)
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    classes = torch.tensor([1, 1, 2, 1])
    assert sorted(T.nms(boxes, scores, classes).tolist()) == [0, 2, 3]


def test_detection_levels_come_from_the_plan() -> None:
    assert [(lv.stride, lv.height) for lv in levels_of(space(size=64).plan(), 64)] == [(8, 8), (16, 4), (32, 2)]


def test_bad_searcher_options_are_user_errors() -> None:
    from nas.core.errors import UserError
    from nas.searchers.fbnetv5.searcher import FBNetV5Searcher

    with pytest.raises(UserError, match="tasks must be among"):
        FBNetV5Searcher(tasks=["depth"])
    with pytest.raises(UserError, match="0 <= warmup <= steps"):
        FBNetV5Searcher(steps=10, warmup=20)


@pytest.mark.slow
def test_tiny_search_end_to_end(tmp_path) -> None:
    from nas.cli.config import compose
    from nas.runner.run import search

    run_dir = tmp_path / "run"
    config = compose(["space=fbnetv5", "searcher=fbnetv5", f"run_dir={run_dir}", "searcher.steps=6",
                      "searcher.warmup=2", "searcher.batch_size=8", "searcher.data.n=48", "searcher.data.valid=16",
                      "searcher.data.size=32", "searcher.final_steps=2", "searcher.final_batch_size=8",
                      "searcher.checkpoint_every=3"])
    summary = search(config, progress=False)
    roles = sorted((r.tags["task"], r.tags["role"]) for r in summary.results)
    assert roles == sorted((t, role) for t in TASKS for role in ("found", "random"))
    metric = {"classification": "valid_accuracy", "segmentation": "valid_miou", "detection": "valid_map"}
    for result in summary.results:
        value = result.metrics[metric[result.tags["task"]]]
        assert 0.0 <= value <= 100.0 and result.metrics["macs"] > 0
        assert result.genotype.macro_dict["tasks"] == [result.tags["task"]]
    for task in TASKS:
        found, random = (next(r for r in summary.results if r.tags == {"task": task, "role": role})
                         for role in ("found", "random"))
        assert abs(random.metrics["macs"] - found.metrics["macs"]) <= 0.05 * found.metrics["macs"]
    rows = (run_dir / "keep_probs.csv").read_text().splitlines()
    assert rows[0] == "task,block,stage,path,reaches_task,keep_prob" and len(rows) == 1 + 3 * 18
    assert "path 3 (1/32)" in (run_dir / "keep_probs.md").read_text()
    architectures = json.loads((run_dir / "architectures.json").read_text())
    assert [row["kind"] for row in architectures["detection"]] == ["most_probable", "sample", "sample", "sample"]
    assert (run_dir / "fbnetv5_state.pt").is_file() and (run_dir / "report.md").is_file()
    report = (run_dir / "report.md").read_text()
    section = report[report.index("## Found vs random of equal MACs, per task"):]
    assert all(f"| {task} | {metric[task]} |" in section for task in TASKS) and "One search seed" in section


@pytest.mark.slow
def test_killed_search_resumes_from_its_checkpoint(tmp_path, capsys) -> None:
    """A run killed during the final trainings resumes: the supernet is not retrained, done trainings are kept."""
    from nas.cli.config import compose
    from nas.runner.run import resume, search

    run_dir = tmp_path / "run"
    config = compose(["space=fbnetv5", "searcher=fbnetv5", f"run_dir={run_dir}", "searcher.steps=4",
                      "searcher.warmup=1", "searcher.batch_size=8", "searcher.data.n=32", "searcher.data.valid=8",
                      "searcher.data.size=32", "searcher.final_steps=1", "searcher.final_batch_size=8",
                      "searcher.tasks=[classification,segmentation]"])
    first = search(config, progress=False)
    assert len(first.results) == 4
    journal = run_dir / "trials.jsonl"
    journal.write_text("".join(journal.read_text().splitlines(keepends=True)[:2]))  # killed after two trainings
    again = resume(run_dir, progress=True)
    assert "resumed the search at step 4" in capsys.readouterr().err
    tags = [(r.tags["task"], r.tags["role"]) for r in again.results]
    assert tags == [("classification", "found"), ("classification", "random"), ("segmentation", "found"),
                    ("segmentation", "random")]
    assert [r.trial for r in again.results] == [0, 1, 2, 3]


def test_a_short_training_is_evaluated_with_bn_statistics_of_its_data(monkeypatch) -> None:
    """FBNet's BN momentum (0.003) leaves the running statistics near 0 / 1 after a short training: train_task
    evaluates with statistics recalibrated on the training images (the exact per-channel mean of the first BN's
    input over them), not with those."""
    from nas.evaluators.multitask import _train as S

    data = make_canvases(n=40, valid=8, size=32, seed=0)
    space = FBNetV5Space("cpu", input_shape=list(data.input_shape), resolution=32, num_classes=data.num_classes,
                         tasks=["classification"])
    arch = space.decode(space.sample(0))
    seen = {}

    def capture(model, *args):
        seen["model"] = model
        return {}

    monkeypatch.setattr(S, "evaluate", capture)
    S.train_task(arch, "classification", data, steps=2, batch_size=8, lr=1e-3, seed=0)
    model = seen["model"]
    first_bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    inputs = []
    hook = first_bn.register_forward_hook(lambda module, args, out: inputs.append(args[0].detach()))
    model.eval()
    with torch.no_grad():
        model(torch.from_numpy(data.train.images))
    hook.remove()
    expected = inputs[0].mean(dim=(0, 2, 3))
    assert first_bn.momentum == pytest.approx(0.003)  # the space's momentum is left as it was
    assert torch.allclose(first_bn.running_mean, expected, atol=1e-4 * float(expected.abs().max()) + 1e-6)


def test_report_table_sets_found_beside_random_per_task() -> None:
    from nas.core.genotype import Genotype
    from nas.core.result import Result, TrialState
    from nas.searchers.fbnetv5._driver import found_vs_random_table

    genotype = Genotype("fbnetv5", 1, {}, {})
    results = [Result(trial=k, genotype=genotype, state=TrialState.COMPLETE, tags={"task": task, "role": role},
                      metrics={metric: value, "macs": macs})
               for k, (task, role, metric, value, macs) in enumerate([
                   ("segmentation", "random", "valid_miou", 12.4, 1.01e6),
                   ("classification", "found", "valid_accuracy", 49.7, 8.1e5),
                   ("classification", "random", "valid_accuracy", 39.75, 8.2e5),
                   ("segmentation", "found", "valid_miou", 13.8, 1.0e6)])]
    lines = found_vs_random_table(results, ["classification", "segmentation", "detection"]).splitlines()
    assert lines[2] == "| classification | valid_accuracy | 49.70 | 39.75 | 0.81 M / 0.82 M |"
    assert lines[3] == "| segmentation | valid_miou | 13.80 | 12.40 | 1.00 M / 1.01 M |"
    assert not any(line.startswith("| detection") for line in lines)  # not trained (yet): no row
    assert "One search seed and one training" in lines[-3]


def test_detection_class_logits_start_at_the_focal_prior() -> None:
    """One conv predicts class, box and centerness per level; only its class channels get the FCOS prior bias."""
    arch = FBNetV5Space("cpu", tasks=["detection"]).decode(FBNetV5Space("cpu", tasks=["detection"]).sample(0))
    network = build(arch, seed=0)
    before = {k: v.clone() for k, v in network.state_dict().items()}
    T.set_class_prior(network)
    prior = -math.log((1 - T.PRIOR) / T.PRIOR)
    nodes = {node.name: node for node in arch.nodes}
    levels = 0
    for head, name in arch.outputs:
        node = nodes[name]
        assert node.op == "channel_slice"
        key = nodes[node.inputs[0]].name.replace(".", "/")
        part = slice(node.p["start"], node.p["stop"])
        bias = network.layers[key].bias.detach()[part]
        if head.endswith(".cls"):
            levels += 1
            assert torch.allclose(bias, torch.full_like(bias, prior))
        else:  # box and centerness keep their initialisation
            assert torch.equal(bias, before[f"layers.{key}.bias"][part])
    assert levels == 3


def _greedy_nms(boxes, scores, classes, iou: float) -> list[int]:
    """The textbook loop: walk the boxes best first, keep one unless a kept box of its class overlaps it."""
    kept: list[int] = []
    for i in scores.argsort(descending=True).tolist():
        if all(classes[k] != classes[i] or float(T.box_iou(boxes[k:k + 1], boxes[i:i + 1])[0, 0]) <= iou
               for k in kept):
            kept.append(i)
    return kept if kept else torch.zeros(0, dtype=torch.long).tolist()


@pytest.mark.parametrize("seed", range(6))
def test_vectorised_nms_equals_the_greedy_loop(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    n = 60
    corner = torch.rand(n, 2, generator=gen) * 20
    boxes = torch.cat([corner, corner + 3 + torch.rand(n, 2, generator=gen) * 6], 1)  # heavy overlaps: chains
    scores = torch.rand(n, generator=gen)
    classes = torch.randint(0, 3, (n,), generator=gen)
    for iou in (0.3, 0.5, 0.7):
        assert T.nms(boxes, scores, classes, iou).tolist() == _greedy_nms(boxes, scores, classes, iou)


def _first_step(data, sandwich: bool):
    """One search step with the supernet's masks, the batch and the gradients before the update recorded."""
    from dataclasses import replace

    config = replace(SearchConfig(steps=4, warmup=1, batch_size=8), sandwich=sandwich)
    search = MultitaskSearch(space().plan(), data, TASKS, config)
    masks, batches, grads = [], [], []
    forward, take, update = search.supernet.forward, search.trainer.batch, search.trainer.optimizer.step
    search.supernet.forward = lambda x, mask, heads: (masks.append(torch.as_tensor(mask).clone())
                                                      or forward(x, mask, heads))
    search.trainer.batch = lambda: batches.append(take()) or batches[-1]
    search.trainer.optimizer.step = lambda *a, **k: grads.append(
        [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in search.supernet.parameters()]
    ) or update(*a, **k)
    return search.step(), masks, batches[0], grads[0]


def test_sandwich_adds_the_largest_and_smallest_networks_gradients(data) -> None:
    plain, plain_masks, batch, plain_grads = _first_step(data, sandwich=False)
    got, masks, _, grads = _first_step(data, sandwich=True)
    b = len(plain_masks[0])
    assert len(plain_masks) == 1 and len(masks) == 3 and torch.equal(masks[0], plain_masks[0])
    assert torch.equal(masks[1], torch.ones(b)) and torch.equal(masks[2], torch.zeros(b))
    assert got == plain  # the REINFORCE signal and the reported losses come from the sampled mask alone
    fresh = MultitaskSearch(space().plan(), data, TASKS, SearchConfig(steps=4, warmup=1, batch_size=8))
    for keep in (1.0, 0.0):
        out = fresh.supernet(batch.images, torch.full((b,), keep), fresh.trainer.all_heads)
        sum(task_loss(t, out, batch, fresh.trainer.levels) for t in TASKS).backward()
    extra = [torch.zeros_like(p) if p.grad is None else p.grad for p in fresh.supernet.parameters()]
    assert any(e.abs().sum() > 0 for e in extra)
    for g, p, e in zip(grads, plain_grads, extra):
        assert torch.allclose(g, p + e, atol=1e-5, rtol=1e-4)


def test_sandwich_must_be_a_boolean() -> None:
    from nas.core.errors import UserError
    from nas.searchers.fbnetv5.searcher import FBNetV5Searcher

    assert FBNetV5Searcher(sandwich=False).search_options["sandwich"] is False
    # on by default, in the Python API and in the CLI's config (it is what makes the supernet rank)
    assert FBNetV5Searcher().search_options["sandwich"] is True
    from nas.cli.config import compose

    assert compose(["space=fbnetv5"])["searcher"]["sandwich"] is True
    with pytest.raises(UserError, match="sandwich must be true or false; got 'yes'"):
        FBNetV5Searcher(sandwich="yes")


def test_the_policy_learns_only_from_what_it_is_told_after_the_warm_up(data) -> None:
    """ask/tell: a warm-up proposal is uniform with weights 1 and teaches nothing; afterwards a told loss moves
    the logits of the decisions that reach the task and no others."""
    from nas.searchers.fbnetv5._policy import MaskPolicy

    plan = space().plan()
    cost = MaskCost(plan, TASKS)
    policy = MaskPolicy(TASKS, cost, warmup=1, theta_lr=0.1, flops_weight={"segmentation": 0.5}, seed=0)
    for losses in ([2.0, 1.0, 3.0], [1.0, 3.0, 1.0]):  # a learning policy would move on the second
        warm = policy.ask(0)
        assert warm.warm and torch.equal(warm.weights, torch.ones(len(TASKS)))
        policy.tell(warm, torch.tensor(losses))
    assert torch.equal(policy.dists.logits.detach(), torch.zeros_like(policy.dists.logits))
    for step, losses in ((1, [2.0, 1.0, 3.0]), (2, [1.0, 3.0, 1.0])):  # the first sets the baselines
        proposal = policy.ask(step)
        assert not proposal.warm
        policy.tell(proposal, torch.tensor(losses))
    moved = policy.dists.logits.detach() != 0
    assert moved.any() and not (moved & (cost.reach == 0)).any()
    mask = torch.ones(len(plan.decisions))
    assert torch.allclose(policy.costs(torch.zeros(len(TASKS)), mask), torch.tensor([0.0, 0.5, 0.0]))

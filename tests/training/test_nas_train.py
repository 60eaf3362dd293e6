"""`nas train`: recipes, the training directory, exact resume after kill -9, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import nas
from nas.backends.training import Augment, TrainConfig, learning_rate
from nas.cli.main import main
from nas.training.recipes import load_recipe, recipe_names, train_config
from nas.training.weights import read_weights

SMALL = nas.space("nb201", preset="small").sample(seed=3)


@pytest.fixture(scope="module")
def arch_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("arch") / "small.json"
    path.write_text(json.dumps(SMALL.to_json()))
    return path


def _train_args(arch_file: Path, out: Path, epochs: int = 3) -> list[str]:
    return [str(arch_file), f"out={out}", f"recipe.epochs={epochs}", "recipe.batch_size=128", "seed=7"]


def test_every_recipe_loads_and_states_its_source() -> None:
    assert {"cpu", "nb201", "nasnet_cifar", "resnet_rs", "simplenet"} <= set(recipe_names())
    for name in recipe_names():
        recipe = load_recipe(name)
        assert recipe["source"] and recipe["description"]
        config = train_config(recipe, seed=0)
        assert config.epochs >= 1 and config.lr > 0
    nb201 = train_config(load_recipe("nb201"), 0)
    assert (nb201.epochs, nb201.batch_size, nb201.lr, nb201.weight_decay) == (200, 256, 0.1, 5e-4)
    assert nb201.augment == Augment(crop_padding=4, flip=True)
    nasnet = train_config(load_recipe("nasnet_cifar"), 0)
    assert (nasnet.aux_weight, nasnet.grad_clip, nasnet.augment.cutout) == (0.4, 5.0, 16)


def test_recipe_overrides_and_schedules() -> None:
    recipe = load_recipe("simplenet", {"epochs": "20", "augment.cutout": "8", "milestones": "[5, 10]"})
    config = train_config(recipe, 0)
    assert config.epochs == 20 and config.augment.cutout == 8 and config.milestones == (5, 10)
    per_epoch = 10
    assert learning_rate(config, 49, per_epoch) == pytest.approx(0.1)
    assert learning_rate(config, 50, per_epoch) == pytest.approx(0.01)
    assert learning_rate(config, 100, per_epoch) == pytest.approx(0.001)
    warm = TrainConfig(epochs=10, lr=1.0, warmup_epochs=2)
    assert learning_rate(warm, 0, 10) == pytest.approx(0.05)
    assert learning_rate(warm, 19, 10) == pytest.approx(1.0)
    assert learning_rate(warm, 20, 10) == pytest.approx(1.0)
    assert learning_rate(warm, 99, 10) < 0.01


def test_augmentation_is_seeded_and_cutout_zeroes_a_square() -> None:
    from nas.backends.torch.augment import BatchAugment

    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 3, 32, 32)).astype(np.float32)
    ops = BatchAugment(Augment(cutout=16), x)
    out = ops(torch.from_numpy(x))
    zero = (out == 0).all(dim=1)
    assert [int(z.sum()) for z in zero] == [256] * 8  # one 16x16 square per image
    full = BatchAugment(Augment(crop_padding=4, flip=True, color_jitter=0.4, erasing=0.5), x)
    torch.manual_seed(1)
    a = full(torch.from_numpy(x))
    torch.manual_seed(1)
    b = full(torch.from_numpy(x))
    assert torch.equal(a, b) and not torch.allclose(a, torch.from_numpy(x))


def test_train_directory_contents_and_reload(arch_file, tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert main(["train", *_train_args(arch_file, out, epochs=2)]) == 0
    printed = capsys.readouterr().out
    assert "epoch 1/2" in printed and "epoch 2/2" in printed and f"out: {out}" in printed
    assert {p.name for p in out.iterdir()} == {"model.safetensors", "arch.json", "recipe.yaml", "metrics.jsonl",
                                               "last.ckpt"}
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in lines] == [1, 2]
    assert {"train_loss", "train_accuracy", "valid_accuracy", "lr", "seconds"} <= set(lines[0])
    settings = yaml.safe_load((out / "recipe.yaml").read_text())
    assert settings["recipe"]["epochs"] == 2 and settings["recipe"]["name"] == "cpu" and settings["seed"] == 7
    # the saved weights are the trained model: they reproduce the final validation accuracy
    model = nas.create_model(run=out)
    from nas.backends.torch.train import accuracy
    from nas.data.base import load_dataset

    data = load_dataset("digits")
    assert accuracy(model, data.valid_x, data.valid_y, 256) == pytest.approx(lines[-1]["valid_accuracy"])


def _kill_after_first_epoch(args: list[str], out: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "nas.cli.main", "train", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    try:
        while time.time() < deadline and proc.poll() is None:
            if (out / "last.ckpt").exists() and (out / "metrics.jsonl").exists():
                break
            time.sleep(0.02)
        assert proc.poll() is None, f"training ended before it could be killed: {proc.stderr.read().decode()}"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()


def test_resume_after_kill_9_equals_an_uninterrupted_run(arch_file, tmp_path) -> None:
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "nas.cli.main", "train", *_train_args(arch_file, whole)], env=env,
                   check=True, stdout=subprocess.DEVNULL)
    _kill_after_first_epoch(_train_args(arch_file, killed), killed)
    assert not (killed / "model.safetensors").exists()
    done = len((killed / "metrics.jsonl").read_text().splitlines())
    assert 1 <= done < 3
    result = subprocess.run([sys.executable, "-m", "nas.cli.main", "train", f"resume={killed}"], env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert f"resuming {killed} after epoch {done} of 3" in result.stdout
    a, b = read_weights(whole / "model.safetensors"), read_weights(killed / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    whole_metrics = [json.loads(x) for x in (whole / "metrics.jsonl").read_text().splitlines()]
    killed_metrics = [json.loads(x) for x in (killed / "metrics.jsonl").read_text().splitlines()]
    assert [m["train_loss"] for m in whole_metrics] == [m["train_loss"] for m in killed_metrics]


def test_jax_backend_trains_into_torch_named_weights(arch_file, tmp_path) -> None:
    out = tmp_path / "jax"
    assert main(["train", str(arch_file), f"out={out}", "backend=jax", "recipe.epochs=1",
                 "recipe.batch_size=128"]) == 0
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 1
    model = nas.create_model(run=out)
    assert read_weights(out / "model.safetensors").keys() == model.state_dict().keys()


def test_a_published_name_is_adapted_to_the_dataset(tmp_path) -> None:
    out = tmp_path / "pub"
    assert main(["train", "nb201_best_cifar10", f"out={out}", "recipe.epochs=1", "recipe.batch_size=256",
                 "dataset.resolution=16"]) == 0
    card = json.loads((out / "arch.json").read_text())
    assert card["input_shape"] == [1, 16, 16] and card["outputs"] == {"logits": [10]}


@pytest.mark.parametrize("args, message", [
    (["nb201-best-cifar10", "recipe=imagenet"], "unknown recipe 'imagenet'; valid choices: cpu"),
    (["nb201-best-cifar10", "recipe.momentum_x=1"], "recipe has no field 'momentum_x'"),
    (["nb201-best-cifar10", "recipe.epochs=0"], "epochs must be a positive integer"),
    (["nb201-best-cifar10", "recipe.optimizer=lion"], "optimizer 'lion'"),
    (["no-such-net"], "no such file, directory or published architecture: no-such-net"),
    (["nb201-best-cifar10", "backend=mxnet"], "unknown backend 'mxnet'"),
    (["nb201-best-cifar10", "device=cuda:7"], "device"),
])
def test_bad_train_input_is_one_line_and_writes_nothing(args, message, tmp_path, capsys) -> None:
    out = tmp_path / "never"
    assert main(["train", *args, f"out={out}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not out.exists()


def test_resume_of_something_else_and_occupied_out(arch_file, tmp_path, capsys) -> None:
    assert main(["train", f"resume={tmp_path}"]) == 2
    assert f"not a training directory (no arch.json and recipe.yaml): {tmp_path}" in capsys.readouterr().err
    (tmp_path / "x.txt").write_text("mine")
    assert main(["train", str(arch_file), f"out={tmp_path}"]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert main(["train", f"resume={tmp_path}", "seed=3"]) == 2
    assert "drop seed=3" in capsys.readouterr().err


def test_threads_sets_torch_threads_and_rejects_bad_values(arch_file, tmp_path, capsys) -> None:
    before = torch.get_num_threads()
    try:
        assert main(["train", str(arch_file), "recipe.epochs=1", "recipe.max_steps_per_epoch=1", "threads=1"]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert main(["train", str(arch_file), "threads=0", f"out={tmp_path / 'no'}"]) == 2
    assert "threads must be a positive integer, got '0'" in capsys.readouterr().err
    assert not (tmp_path / "no").exists()

"""Device names from config: torch and JAX accept cpu/cuda spellings and refuse absent devices with one line."""

from __future__ import annotations

import jax
import pytest
import torch

from nas.backends.jax.train import jax_device
from nas.backends.torch.device import torch_device
from nas.core.errors import UserError
from nas.testing.skips import NEEDS_NO_GPU

NO_CUDA = not torch.cuda.is_available()
NO_JAX_GPU = not any(d.platform == "gpu" for d in jax.devices())


def test_cpu_spellings() -> None:
    assert torch_device(None) == torch.device("cpu")
    assert torch_device(" CPU ") == torch.device("cpu")
    assert torch_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert jax_device("cpu").platform == "cpu"


@pytest.mark.parametrize("name", ["tpu", "not-a-device", "meta"])
def test_unknown_torch_devices_are_user_errors(name: str) -> None:
    with pytest.raises(UserError, match="device"):
        torch_device(name)


@pytest.mark.skipif(not NO_CUDA, reason=f"{NEEDS_NO_GPU}: this machine has CUDA")
def test_cuda_without_cuda_is_a_user_error() -> None:
    with pytest.raises(UserError, match="no CUDA device"):
        torch_device("cuda")


@pytest.mark.skipif(not NO_JAX_GPU, reason=f"{NEEDS_NO_GPU}: JAX has a GPU here")
def test_jax_gpu_without_gpu_is_a_user_error() -> None:
    with pytest.raises(UserError, match="no gpu backend"):
        jax_device("cuda:0")


def test_jax_device_index_out_of_range() -> None:
    with pytest.raises(UserError, match="cpu device"):
        jax_device("cpu:99")


@pytest.mark.skipif(not NO_CUDA, reason=f"{NEEDS_NO_GPU}: this machine has CUDA")
def test_fbnetv5_search_on_absent_cuda_fails_before_any_work() -> None:
    from nas.data.multitask import make_canvases
    from nas.searchers.fbnetv5._search import MultitaskSearch, SearchConfig
    from nas.spaces.fbnet.fbnetv5 import FBNetV5Space

    data = make_canvases("digits", n=16, size=64, seed=0, valid=4)
    plan = FBNetV5Space("cpu", input_shape=[1, 64, 64], resolution=64, seg_classes=11).plan()
    with pytest.raises(UserError, match="no CUDA device"):
        MultitaskSearch(plan, data, ("classification",), SearchConfig(device="cuda"))

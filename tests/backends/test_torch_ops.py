"""The torch op table's hand-written ops against the torch modules they replace."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from nas.backends.torch.ops import AvgPool


@settings(max_examples=40, deadline=None)
@given(kernel=st.integers(1, 5), stride=st.integers(1, 3), pad=st.integers(0, 2), size=st.integers(5, 12),
       channels=st.integers(1, 4), include=st.booleans())
def test_avg_pool_equals_torch_avg_pool(kernel: int, stride: int, pad: int, size: int, channels: int,
                                        include: bool) -> None:
    pad = min(pad, kernel // 2)  # torch's limit on the padding of a pooling window
    reference = nn.AvgPool2d(kernel, stride, pad, count_include_pad=include)
    ours = AvgPool((kernel, kernel), (stride, stride), (pad, pad), include)
    x = torch.randn(2, channels, size, size + 1, dtype=torch.float64, requires_grad=True)
    y_ref = reference(x)
    (g_ref,) = torch.autograd.grad(y_ref.square().sum(), x)
    y = ours(x)
    (g,) = torch.autograd.grad(y.square().sum(), x)
    assert y.shape == y_ref.shape
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(g, g_ref)


@pytest.mark.parametrize("include", [False, True])
def test_avg_pool_border_counts(include: bool) -> None:
    """A corner of a 3x3 window with one padded row and column averages 4 inputs (or 9 with the padding)."""
    y = AvgPool((3, 3), (1, 1), (1, 1), include)(torch.ones(1, 1, 4, 4))
    assert y[0, 0, 0, 0].item() == pytest.approx(4 / 9 if include else 1.0)
    assert y[0, 0, 1, 1].item() == pytest.approx(1.0)

"""The NB201 BossNAS benchmark's op counts: live ops only, three stages of one cell each."""

from __future__ import annotations

from nas.spaces.nb201 import NB201Space


def _counter(benchmark_script):
    bench = benchmark_script("bossnas_nb201")
    space = NB201Space(channels=8, cells_per_stage=1)
    return lambda cell: bench.op_counts(space.decode(space.parse(cell)))


def test_op_counts_count_live_edges_of_every_stage(benchmark_script) -> None:
    _counts = _counter(benchmark_script)
    skip = _counts("|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|")
    conv3 = _counts("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    pool = _counts("|avg_pool_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|avg_pool_3x3~0|avg_pool_3x3~1|avg_pool_3x3~2|")
    assert conv3["conv3x3"] - skip["conv3x3"] == 18 and conv3["conv1x1"] == skip["conv1x1"]
    assert pool["avg_pool"] - skip["avg_pool"] == 18 and pool["conv3x3"] == skip["conv3x3"]
    # node 3 reads only node 0: the convolutions into nodes 1 and 2 are dead and do not count
    dead = _counts("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_1x1~0|none~1|none~2|")
    assert dead["conv3x3"] == skip["conv3x3"] and dead["conv1x1"] - skip["conv1x1"] == 3

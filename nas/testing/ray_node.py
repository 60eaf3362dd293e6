"""Join one more Ray node to a cluster on 127.0.0.1, for tests that lose a node mid-search.

``ray start --address=127.0.0.1:<port>`` cannot do it on loopback: with ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``
(which keeps Ray's own address on 127.0.0.1) it refuses to join a node ("Multi-node Ray clusters are not
supported"), and without it it replaces 127.0.0.1 by the machine's external address, in ``--address`` and in
``--node-ip-address`` alike (checked with Ray 2.60). This starts the node the way ``ray start`` does, as a
``ray._private.node.Node`` whose raylet and agents are this process's children, with every address kept on
127.0.0.1 and its own temp dir. It prints ``Ray runtime started`` once the node runs, then blocks: SIGTERM stops
the node's processes; SIGKILL takes them down too (they share this process's fate), as a lost machine would.

    python -m nas.testing.ray_node --address 127.0.0.1:6379 --num-cpus 1 --temp-dir /tmp/rayn
"""

from __future__ import annotations

import argparse
import os
import signal

LOOPBACK = "127.0.0.1"


def main(argv: list[str] | None = None) -> None:
    """Start the node and block until a signal ends this process."""
    parser = argparse.ArgumentParser(prog="python -m nas.testing.ray_node", description=__doc__.splitlines()[0])
    parser.add_argument("--address", required=True, help="the head's GCS address, 127.0.0.1:<port>")
    parser.add_argument("--num-cpus", type=int, required=True)
    parser.add_argument("--temp-dir", required=True, help="this node's own Ray temp dir (keep it short)")
    args = parser.parse_args(argv)
    if args.address.rpartition(":")[0] != LOOPBACK:
        parser.error(f"--address must be {LOOPBACK}:<port>, got {args.address!r}")
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # before Ray is imported: its processes stay on loopback
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray._private.node
    import ray._private.parameter

    params = ray._private.parameter.RayParams(gcs_address=args.address, node_ip_address=LOOPBACK,
                                              node_name=LOOPBACK, num_cpus=args.num_cpus, temp_dir=args.temp_dir)
    ray._private.node.Node(params, head=False, shutdown_at_exit=True, spawn_reaper=True)
    print(f"Local node IP: {LOOPBACK}\nRay runtime started.", flush=True)
    while True:
        signal.pause()


if __name__ == "__main__":
    main()

"""Control-plane start time: cold (new state folder) and warm (state kept), N rounds each.

    python bench/controlplane_start.py [--rounds 3]

Prints one line per round and a summary; the figures go in README's table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import dev_settings

from hive.dev.controlplane import ControlPlane


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cold, warm = [], []
    for round_ in range(args.rounds):
        with tempfile.TemporaryDirectory() as folder:
            plane = ControlPlane(dev_settings(Path(folder), kwok_nodes=3))
            try:
                started = time.perf_counter()
                plane.up()
                cold.append(time.perf_counter() - started)
                plane.down()
                started = time.perf_counter()
                plane.up()
                warm.append(time.perf_counter() - started)
            finally:
                plane.down(purge=True)
        print(f"round {round_ + 1}: cold {cold[-1]:.2f}s  warm {warm[-1]:.2f}s", flush=True)
    print(
        f"control plane up (etcd, kube-apiserver, controller-manager, scheduler, KWOK, 3 nodes): "
        f"cold median {statistics.median(cold):.2f}s, warm median {statistics.median(warm):.2f}s "
        f"over {args.rounds} rounds"
    )


if __name__ == "__main__":
    main()

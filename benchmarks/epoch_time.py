"""Seconds per training epoch of dropcli on synthetic CIFAR-sized data.

    python benchmarks/epoch_time.py [--hidden 1024,1024] [--threads 1] [--epochs 3] [--norm none]

Synthetic data: 10,000 x 3072 float32 standard normal, 10 classes, keep_prob 0.5,
Adam, batch 200. Prints the BLAS in use, each epoch's time and the median after the
first (warm-up) epoch. Epoch time covers the training pass only (evaluation excluded).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from dropcli.nn import FullyConnectedNet, make_optimizer, streams
from dropcli.nn.model import loss_and_grads


def epoch_times(hidden, threads, epochs, norm, n=10_000, d=3072, batch=200):
    rngs = streams(0)
    X = rngs["data"].standard_normal((n, d), dtype=np.float32)
    y = rngs["data"].integers(10, size=n)
    net = FullyConnectedNet(hidden, input_dim=d, num_classes=10, keep_prob=0.5, normalization=norm,
                            weight_scale="he", seed=0)
    opt = make_optimizer("adam")
    state = opt.init(net.params)
    times = []
    with threadpool_limits(limits=threads, user_api="blas"):
        for _ in range(epochs):
            start = time.perf_counter()
            order = rngs["order"].permutation(n)
            for lo in range(0, n, batch):
                idx = order[lo : lo + batch]
                _, grads, net.bn_state = loss_and_grads(
                    net.arch, net.params, net.bn_state, X.take(idx, axis=0), y.take(idx), rng=rngs["dropout"]
                )
                opt.step(net.params, grads, state)
            times.append(time.perf_counter() - start)
    return times


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hidden", default="1024,1024")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--norm", default="none", choices=["none", "batchnorm", "layernorm"])
    a = p.parse_args()
    hidden = [int(h) for h in a.hidden.split(",")]
    blas = [(i["internal_api"], i.get("version"), i.get("architecture")) for i in threadpool_info() if i["user_api"] == "blas"]
    print(f"BLAS: {blas}; threads: {a.threads}; hidden {hidden}; norm {a.norm}; numpy {np.__version__}")
    times = epoch_times(hidden, a.threads, a.epochs, None if a.norm == "none" else a.norm)
    print("epoch seconds:", " ".join(f"{t:.3f}" for t in times))
    print(f"median after warm-up: {statistics.median(times[1:] or times):.3f} s/epoch")


if __name__ == "__main__":
    main()

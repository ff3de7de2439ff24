"""Seconds per training epoch of dropcli on synthetic CIFAR-sized data, and where they go.

    python benchmarks/epoch_time.py [--hidden 1024,1024] [--threads 1] [--epochs 3] [--norm none]
                                    [--reference] [--profile]

Synthetic data: 10,000 x 3072 float32 standard normal, 10 classes, keep_prob 0.5,
Adam, batch 200. Prints the BLAS in use, each epoch's time and the median after the
first (warm-up) epoch. Epoch time covers the training pass only (evaluation excluded).
By default an epoch is what ``dropcli.train.loop.fit`` runs (``TrainStep``: ``forward`` and
``backward`` in buffers, each layer updated as its gradients are ready);
``--reference`` times the reference functions instead (``loss_and_grads`` then
``Optimizer.step``). ``--profile`` prints cProfile's top entries for the last epoch.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from dropcli.nn import FullyConnectedNet, make_optimizer, streams
from dropcli.nn.model import loss_and_grads
from dropcli.nn.step import TrainStep


def epoch_runner(hidden, norm, *, reference=False, n=10_000, d=3072, batch=200):
    """A function that trains one epoch per call."""
    rngs = streams(0)
    X = rngs["data"].standard_normal((n, d), dtype=np.float32)
    y = rngs["data"].integers(10, size=n)
    net = FullyConnectedNet(hidden, input_dim=d, num_classes=10, keep_prob=0.5, normalization=norm,
                            weight_scale="he", seed=0)
    opt = make_optimizer("adam")
    if reference:
        state = opt.init(net.params)

        def epoch():
            order = rngs["order"].permutation(n)
            for lo in range(0, n, batch):
                idx = order[lo : lo + batch]
                _, grads, net.bn_state = loss_and_grads(net.arch, net.params, net.bn_state, X.take(idx, axis=0),
                                                        y.take(idx), rng=rngs["dropout"])
                opt.step(net.params, grads, state)
        return epoch

    step = TrainStep(net.arch, net.params, opt, batch)

    def epoch():
        order = rngs["order"].permutation(n)
        for lo in range(0, n, batch):
            _, net.bn_state = step(X, y, order[lo : lo + batch], net.bn_state, rng=rngs["dropout"])
    return epoch


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hidden", default="1024,1024")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--norm", default="none", choices=["none", "batchnorm", "layernorm"])
    p.add_argument("--reference", action="store_true", help="time the reference functions, not the training step")
    p.add_argument("--profile", action="store_true", help="cProfile the last epoch")
    a = p.parse_args()
    hidden = [int(h) for h in a.hidden.split(",")]
    blas = [(i["internal_api"], i.get("version"), i.get("architecture")) for i in threadpool_info() if i["user_api"] == "blas"]
    path = "reference" if a.reference else "TrainStep"
    print(f"BLAS: {blas}; threads: {a.threads}; hidden {hidden}; norm {a.norm}; {path}; numpy {np.__version__}")
    epoch = epoch_runner(hidden, None if a.norm == "none" else a.norm, reference=a.reference)
    times, profile = [], cProfile.Profile()
    with threadpool_limits(limits=a.threads, user_api="blas"):
        for e in range(a.epochs):
            last = a.profile and e == a.epochs - 1
            start = time.perf_counter()
            profile.runcall(epoch) if last else epoch()
            times.append(time.perf_counter() - start)
    print("epoch seconds:", " ".join(f"{t:.3f}" for t in times))
    print(f"median after warm-up: {statistics.median(times[1:] or times):.3f} s/epoch")
    if a.profile:
        pstats.Stats(profile).sort_stats("tottime").print_stats(12)


if __name__ == "__main__":
    main()

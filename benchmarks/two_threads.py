"""Can a second Python thread share a training step's work on this machine? What it costs.

    python benchmarks/two_threads.py [--reps 30]

The training step runs NumPy's element-wise work (Adam above all) on one core while BLAS
threads the matrix products. Splitting that work over two threads of our own needs the
two to hand work to each other cheaply. This prints, medians of ``--reps``:

1. the round trip of a handover between two Python threads (a lock released by one
   and acquired by the other, and back);
2. Adam's in-place passes (``Adam.update_chunk``) over 4.2 M parameters held in
   cache-sized arrays, on one thread, split over two threads, and in two processes at
   once (no GIL), for several chunk sizes;
3. the matrix products of one [1024, 1024] step (batch 200, input 3072) with BLAS at one
   thread, at two threads, and split in halves over two Python threads each calling BLAS
   at one thread.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits

PARAMS = 1 << 22  # about [1024, 1024]'s 4.2 M parameters


def median_ms(fn, reps):
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def handover_us(rounds=5000):
    go, back = threading.Lock(), threading.Lock()
    go.acquire()
    back.acquire()

    def serve():
        for _ in range(rounds):
            go.acquire()
            back.release()

    worker = threading.Thread(target=serve)
    worker.start()
    start = time.perf_counter()
    for _ in range(rounds):
        go.release()
        back.acquire()
    worker.join()
    return 1e6 * (time.perf_counter() - start) / rounds


def adam_passes(chunk, chunks):
    """A function running Adam's passes ``chunks`` times over arrays of ``chunk`` elements."""
    from dropcli.nn.optim import Adam

    rng, opt = np.random.default_rng(0), Adam()
    w, dw, m = (rng.standard_normal(chunk, dtype=np.float32) for _ in range(3))
    v, tmp = np.abs(rng.standard_normal(chunk, dtype=np.float32)), np.empty(chunk, np.float32)
    coeffs = opt.coefficients(1, 1e-3)

    def run():
        for _ in range(chunks):
            opt.update_chunk(w, dw, m, v, tmp=tmp, coeffs=coeffs)
    return run


def step_products():
    """Halves of the products of one [1024, 1024] step: ``run(part)`` for part 0 or 1, or
    ``run(None)`` for all of them whole."""
    rng, f = np.random.default_rng(0), np.float32
    x, a = rng.standard_normal((200, 3072), dtype=f), rng.standard_normal((200, 1024), dtype=f)
    w1, w2 = rng.standard_normal((3072, 1024), dtype=f), rng.standard_normal((1024, 1024), dtype=f)
    z, dw1, dw2, da = np.empty((200, 1024), f), np.empty((3072, 1024), f), np.empty((1024, 1024), f), np.empty_like(a)

    def run(part):
        rows, k1, k2 = ((slice(None),) * 3 if part is None else
                        (slice(100 * part, 100 * part + 100), slice(1536 * part, 1536 * part + 1536),
                         slice(512 * part, 512 * part + 512)))
        np.matmul(x[rows], w1, out=z[rows])  # forward, by batch rows
        np.matmul(a[rows], w2, out=z[rows])
        np.matmul(x[:, k1].T, a, out=dw1[k1])  # weight gradients, by the weight's rows
        np.matmul(a[:, k2].T, a, out=dw2[k2])
        np.matmul(a, w2[k2].T, out=da[:, k2])  # input gradient, by its columns
    return run


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=int, default=30)
    p.add_argument("--adam-process", type=int, help=argparse.SUPPRESS)  # one of the two processes of item 2
    a = p.parse_args()
    if a.adam_process:
        with threadpool_limits(1):
            print(median_ms(adam_passes(a.adam_process, PARAMS // 2 // a.adam_process), a.reps))
        return
    print(f"1. handover between two Python threads, there and back: {handover_us():.0f} us")
    pool = ThreadPoolExecutor(1)
    print("2. Adam over 4.2 M parameters (ms): chunk | one thread | two threads | two processes")
    with threadpool_limits(1):
        for chunk in (1 << 13, 1 << 15, 1 << 17):
            one = adam_passes(chunk, PARAMS // chunk)
            mine, theirs = adam_passes(chunk, PARAMS // 2 // chunk), adam_passes(chunk, PARAMS // 2 // chunk)

            def split():
                done = pool.submit(theirs)
                mine()
                done.result()
            cmd = [sys.executable, __file__, "--adam-process", str(chunk), "--reps", str(a.reps)]
            procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(2)]
            apart = max(float(proc.communicate()[0]) for proc in procs)
            print(f"   {chunk:7d} | {median_ms(one, a.reps):5.2f} | {median_ms(split, a.reps):5.2f} | {apart:5.2f}")
    products = step_products()

    def halves():
        done = pool.submit(products, 1)
        products(0)
        done.result()
    with threadpool_limits(1):
        one, split = median_ms(lambda: products(None), a.reps), median_ms(halves, a.reps)
    with threadpool_limits(2):
        two = median_ms(lambda: products(None), a.reps)
    print(f"3. one step's products ([1024, 1024]): BLAS 1 thread {one:.1f} ms, BLAS 2 threads {two:.1f} ms, "
          f"halves on 2 Python threads {split:.1f} ms")


if __name__ == "__main__":
    main()

"""dropcli's speed against PyTorch eager and against this machine's floor.

    python benchmarks/bench.py [--epochs 3] [--rounds 1] [--quick] [--out docs/benchmarks.md]
                               [--against CHECKOUT]

Synthetic data, 10,000 x 3072 float32 standard normal, 10 classes; {affine - [batchnorm] -
relu - dropout(keep 0.5)} x 2 - affine - softmax; Adam (lr 1e-3, PyTorch defaults);
batch 200. For hidden [100, 100] and [1024, 1024], without and with batchnorm, at 1 and 2
BLAS threads it measures, each in a fresh process and interleaved (dropcli, PyTorch,
dropcli, PyTorch, ...):

- seconds per training epoch (median of the epochs after the first), training only, of the
  loop ``dropcli.train.loop.fit`` runs (``dropcli.nn.step.TrainStep``);
- the floor: the same epoch's matrix products timed on their own (same shapes, same
  count), plus one memory pass per optimizer step over the parameters, gradients and
  Adam moments at this machine's measured copy bandwidth;

and reports dropcli / PyTorch and dropcli / floor. With ``--rounds R`` each case runs its
three workers R times, interleaved, and reports medians (the machine's speed drifts).
With ``--against CHECKOUT`` the dropcli worker of another checkout runs too, interleaved
with the others, for before/after ratios measured in one run.
Also: a 4-run sweep with -j 2 vs -j 1 and the wall time of `dropcli --help`. PyTorch is optional (skipped if not installed).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

N, D, C, BATCH = 10_000, 3072, 10, 200
HERE = Path(__file__).resolve()


# --- workers (run in a fresh process each) -------------------------------------------------


def _data(np):
    rng = np.random.default_rng(0)
    return rng.standard_normal((N, D), dtype=np.float32), rng.integers(C, size=N)


def worker_dropcli(hidden, norm, epochs):
    """The loop of ``dropcli.train.loop.fit`` without its evaluation: ``TrainStep``."""
    import numpy as np

    from dropcli.nn import FullyConnectedNet, make_optimizer, streams
    from dropcli.nn.step import TrainStep

    X, y = _data(np)
    rngs = streams(0)
    net = FullyConnectedNet(hidden, input_dim=D, num_classes=C, keep_prob=0.5, normalization=norm,
                            weight_scale="he", seed=0)
    step = TrainStep(net.arch, net.params, make_optimizer("adam"), BATCH)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        order = rngs["order"].permutation(N)
        for lo in range(0, N, BATCH):
            _, net.bn_state = step(X, y, order[lo : lo + BATCH], net.bn_state, rng=rngs["dropout"])
        times.append(time.perf_counter() - start)
    return times


def worker_torch(hidden, norm, epochs, threads):
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    X, y = _data(np)
    X, y = torch.from_numpy(X), torch.from_numpy(y)
    layers, d = [], D
    for h in hidden:
        layers += [torch.nn.Linear(d, h)] + ([torch.nn.BatchNorm1d(h)] if norm == "batchnorm" else [])
        layers += [torch.nn.ReLU(), torch.nn.Dropout(0.5)]
        d = h
    model = torch.nn.Sequential(*layers, torch.nn.Linear(d, C))
    opt = torch.optim.Adam(model.parameters())
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(N)
        for lo in range(0, N, BATCH):
            idx = order[lo : lo + BATCH]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(X[idx]), y[idx])
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - start)
    return times


def worker_floor(hidden, norm, epochs):
    """The epoch's GEMMs alone, plus one memory pass per step at measured copy bandwidth."""
    import numpy as np

    rng = np.random.default_rng(0)
    dims = [D, *hidden, C]
    shapes = []  # (m, k, n) of every product in one training step
    for i in range(len(dims) - 1):
        shapes.append((BATCH, dims[i], dims[i + 1]))  # forward x @ W
        shapes.append((dims[i], BATCH, dims[i + 1]))  # dW = x.T @ dout
        if i > 0:
            shapes.append((BATCH, dims[i + 1], dims[i]))  # dx = dout @ W.T (not for the input)
    mats = [(rng.standard_normal((m, k), dtype=np.float32), rng.standard_normal((k, n), dtype=np.float32))
            for m, k, n in shapes]
    steps = -(-N // BATCH)
    gemm_times = []
    for _ in range(epochs):
        start = time.perf_counter()
        for _ in range(steps):
            for a, b in mats:
                a @ b
        gemm_times.append(time.perf_counter() - start)
    flops = 2 * steps * sum(m * k * n for m, k, n in shapes)
    n_params = sum(dims[i] * dims[i + 1] + dims[i + 1] for i in range(len(dims) - 1))
    # Copy bandwidth on a buffer far larger than cache: bytes read + written per second.
    big = np.ones(64 << 20 >> 2, np.float32)
    dst = np.empty_like(big)
    copies = []
    for _ in range(5):
        start = time.perf_counter()
        np.copyto(dst, big)
        copies.append(time.perf_counter() - start)
    bandwidth = 2 * big.nbytes / min(copies)
    # One pass of an Adam step: read w, dw, m, v and write w, m, v (4-byte floats).
    memory = steps * 7 * 4 * n_params / bandwidth
    gemm = statistics.median(gemm_times[1:] or gemm_times)
    return {"gemm": gemm, "memory": memory, "gflops": flops / gemm / 1e9, "bandwidth_gbs": bandwidth / 1e9}


def run_worker(kind, hidden, norm, epochs, threads, checkout=None):
    """One worker in a fresh process; with ``checkout``, that checkout's worker and dropcli."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads)}
    script = HERE
    if checkout is not None:
        script = checkout.resolve() / "benchmarks" / "bench.py"
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(checkout.resolve()), env.get("PYTHONPATH")]))
    args = [sys.executable, str(script), "--worker", kind, "--hidden", ",".join(map(str, hidden)),
            "--norm", norm or "none", "--epochs", str(epochs), "--threads", str(threads)]
    out = subprocess.run(args, capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- the report -----------------------------------------------------------------------------


def blas_info():
    code = ("import numpy, json; from threadpoolctl import threadpool_info; "
            "print(json.dumps([(i['internal_api'], i.get('version'), i.get('architecture')) "
            "for i in threadpool_info() if i['user_api'] == 'blas']))")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False).stdout.strip()


def have_torch():
    return subprocess.run([sys.executable, "-c", "import torch"], capture_output=True, check=False).returncode == 0


SWEEP_EPOCHS = (30, 100)  # runs of about 1 s and 4 s on this machine


def sweep_speedup(epochs):
    """Wall time of a 4-run digits sweep ([512, 512], ``epochs`` epochs per run) with -j 1
    and -j 2, each from a fresh runs folder, twice, interleaved; the faster of each."""
    config = f"name: bench\ndata: {{num_train: 1000}}\nmodel: {{hidden_dims: [512, 512]}}\ntrain: {{epochs: {epochs}}}\n"
    times = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.yaml"
        path.write_text(config)
        for jobs in ("1", "2", "1", "2"):
            runs = Path(tmp) / f"runs-{jobs}"
            shutil.rmtree(runs, ignore_errors=True)
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "dropcli", "sweep", str(path), "--seeds", "0,1,2,3", "-j", jobs,
                            "--runs-dir", str(runs)], check=True, capture_output=True)
            times.setdefault(jobs, []).append(time.perf_counter() - start)
    return min(times["1"]), min(times["2"])


def help_time():
    exe = shutil.which("dropcli") or "dropcli"
    times = []
    for _ in range(7):
        start = time.perf_counter()
        subprocess.run([exe, "--help"], capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--worker", choices=["dropcli", "torch", "floor"])
    p.add_argument("--hidden", default="1024,1024")
    p.add_argument("--norm", default="none")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=1, help="run each case's workers this many times (medians)")
    p.add_argument("--quick", action="store_true", help="only hidden [1024, 1024] without batchnorm at 1 thread")
    p.add_argument("--out", type=Path, help="also write the results (markdown) into this file, between its markers")
    p.add_argument("--against", type=Path, metavar="CHECKOUT",
                   help="also time the dropcli of this checkout (say, a git worktree of the commit before a change), "
                        "interleaved with the others: a before column")
    a = p.parse_args()
    if a.worker:
        hidden = [int(h) for h in a.hidden.split(",")]
        norm = None if a.norm == "none" else a.norm
        if a.worker == "dropcli":
            result = worker_dropcli(hidden, norm, a.epochs)
        elif a.worker == "torch":
            result = worker_torch(hidden, norm, a.epochs, a.threads)
        else:
            result = worker_floor(hidden, norm, a.epochs)
        print(json.dumps(result))
        return

    load = os.getloadavg()[0]
    torch = have_torch()
    cases = [(h, norm, t) for h in ([100, 100], [1024, 1024]) for norm in (None, "batchnorm") for t in (1, 2)]
    if a.quick:
        cases = [([1024, 1024], None, 1)]
    before_columns = " before s/epoch | before / PyTorch |" if a.against else ""
    lines = [f"BLAS: {blas_info()}; PyTorch: {'yes' if torch else 'not installed'}", "",
             ("| hidden | norm | threads | dropcli s/epoch | PyTorch s/epoch | dropcli / PyTorch |" + before_columns +
              " floor s/epoch (GEMM + memory) | dropcli / floor | GEMM GFLOP/s |"),
             "|---" * (9 + 2 * bool(a.against)) + "|"]
    print(lines[0], flush=True)
    for hidden, norm, threads in cases:
        ours, before, theirs, floors = [], [], [], []
        for _ in range(a.rounds):  # interleaved: dropcli, [before,] PyTorch, floor, dropcli, ...
            ours += run_worker("dropcli", hidden, norm, a.epochs, threads)[1:]
            before += run_worker("dropcli", hidden, norm, a.epochs, threads, a.against)[1:] if a.against else []
            theirs += run_worker("torch", hidden, norm, a.epochs, threads)[1:] if torch else []
            floors.append(run_worker("floor", hidden, norm, a.epochs, threads))
        ours, theirs = statistics.median(ours), statistics.median(theirs) if torch else None
        before_cells = ""
        if a.against:
            before = statistics.median(before)
            before_cells = f" {before:.3f} | {'-' if theirs is None else f'{before / theirs:.2f}'} |"
        floor = {k: statistics.median(f[k] for f in floors) for k in floors[0]}
        floor_s = floor["gemm"] + floor["memory"]
        row = (f"| {hidden} | {norm or 'none'} | {threads} | {ours:.3f} | "
               f"{'-' if theirs is None else f'{theirs:.3f}'} | {'-' if theirs is None else f'{ours / theirs:.2f}'} |"
               f"{before_cells} {floor_s:.3f} ({floor['gemm']:.3f} + {floor['memory']:.3f}) | {ours / floor_s:.2f} | "
               f"{floor['gflops']:.0f} |")
        print(row, flush=True)
        lines.append(row)
    if not a.quick:
        lines.append("")
        for epochs in SWEEP_EPOCHS:
            try:
                j1, j2 = sweep_speedup(epochs)
                lines.append(f"4-run sweep, {epochs} epochs per run: -j 1 {j1:.1f} s, -j 2 {j2:.1f} s, "
                             f"speed-up {j1 / j2:.2f}x  ")
            except subprocess.CalledProcessError as e:  # the table above still stands
                lines.append(f"4-run sweep: failed ({e.stderr.decode(errors='replace').strip().splitlines()[-1:]})  ")
        lines.append(f"`dropcli --help`: {help_time():.2f} s (median of 7)")
        print("\n".join(lines[-3:]))
    if a.out:
        write_results(a.out, lines, " ".join(["python", "benchmarks/bench.py", *sys.argv[1:]]), load)


BEGIN, END = "<!-- bench.py results -->", "<!-- end of bench.py results -->"


def write_results(path: Path, lines, command, load):
    """Put the results between the BEGIN and END markers of ``path``, keeping the prose
    around them (without markers they are appended)."""
    when = f"on {time.strftime('%Y-%m-%d')} ({os.cpu_count()} cores; load average {load:.2f} at the start)"
    block = [BEGIN, f"Produced by `{command}` {when}.", "", *lines, END]
    text = path.read_text() if path.exists() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + "\n".join(block) + rest.split(END, 1)[1]
    else:  # no markers yet: append, leaving what is there
        text = (text.rstrip("\n") + "\n\n" if text else "# Benchmarks\n\n") + "\n".join(block) + "\n"
    path.write_text(text)


if __name__ == "__main__":
    main()

"""`dropcli plot` speed (issue 18): the first plot of a sweep against the sweep's own
training time, and a second plot with nothing changed.

    python benchmarks/plot_speed.py [--rounds 1] [--quick]

Two sweeps, each trained in a fresh temporary folder by a `dropcli` process:

- the README's main sweep, `dropcli sweep --keep 0.25,0.5,1 -j 1` (9 runs: MNIST-1D,
  [256, 256], 80 epochs);
- 81 small runs: the digits, hidden [32], 20 epochs, num_train = num_val = 300 (the
  subsample issue 18 measured with), keep_prob 0.2, 0.3, ..., 1.0 x seeds 0-8, `-j 1`.

For each it times, as separate processes in that folder: the sweep, the first `dropcli
plot runs/`, and a second `dropcli plot runs/` with nothing changed. "train s" is the
sweep command's wall time; "runs s" the sum of its runs' own `wall_time` (summary.json:
training and evaluation, without the process's start-up and the writing of run files),
the stricter yardstick. It checks that the first plot drew every run's curves.png and
that the second drew no figure, prints a markdown table (medians over the rounds; each
round trains both sweeps again), the load average before and after, the CPU count and the
commands, and one "target met" / "target missed" line per target of issue 18: the first
plot of the 81-run sweep <= its training time; a second plot <= 1.5 s. It exits 0 either
way (a benchmark informs) and 1 only if a command fails. --quick: 2 epochs, to check
that the script works.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DIGITS = """\
name: digits
seed: 0
data: {{dataset: digits, num_train: 300, num_val: 300}}
model: {{hidden_dims: [32]}}
train: {{epochs: {epochs}}}
"""
KEEPS81 = ",".join(f"{k / 10:g}" for k in range(2, 11))
SEEDS81 = ",".join(str(s) for s in range(9))
# dropcli chooses its BLAS threads itself; a cap left in the caller's shell would hide that.
ENV = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def sweeps(quick: bool) -> dict[str, tuple[str | None, list[str], int]]:
    """name -> (config file text or None for the built-in default, sweep arguments, runs)."""
    readme = ["sweep", "--keep", "0.25,0.5,1", "-j", "1"] + (["--set", "train.epochs=2"] if quick else [])
    small = ["sweep", "digits.yaml", "--keep", KEEPS81, "--seeds", SEEDS81, "-j", "1"]
    return {"README's sweep": (None, readme, 9),
            "81 small runs": (DIGITS.format(epochs=2 if quick else 20), small, 81)}


def dropcli() -> list[str]:
    exe = shutil.which("dropcli")
    return [exe] if exe else [sys.executable, "-m", "dropcli"]


def run(args: list[str], cwd: Path) -> tuple[float, str]:
    """Wall seconds of ``dropcli args`` in ``cwd``, and its stdout; exits 1 if it fails."""
    started = time.perf_counter()
    out = subprocess.run([*dropcli(), *args], cwd=cwd, env=ENV, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if out.returncode != 0:
        sys.exit(f"`dropcli {shlex.join(args)}` failed ({out.returncode}):\n{out.stderr[-2000:]}")
    return seconds, out.stdout


def pngs(runs: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in runs.rglob("*.png")}


def one_round(name: str, config: str | None, sweep: list[str], n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="plot_speed-") as tmp:
        folder = Path(tmp)
        if config is not None:
            (folder / "digits.yaml").write_text(config)
        train, _ = run(sweep, folder)
        runs = folder / "runs"
        summaries = [json.loads(p.read_text()) for p in runs.rglob("summary.json")]
        if len(summaries) != n or {s.get("status") for s in summaries} != {"completed"}:
            sys.exit(f"{name}: expected {n} completed runs, found {len(summaries)}")
        first, _ = run(["plot", "runs/"], folder)
        drawn = pngs(runs)
        if len([p for p in drawn if p.name == "curves.png"]) != n:
            sys.exit(f"{name}: the first plot did not draw every run's curves.png")
        second, said = run(["plot", "runs/"], folder)
        if pngs(runs) != drawn:
            sys.exit(f"{name}: the second plot drew figures again: {said.strip()}")
        return {"train": train, "runs": sum(s.get("wall_time") or 0.0 for s in summaries), "first": first,
                "second": second, "figures": len(drawn)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="2 epochs: check that the script works")
    args = parser.parse_args()
    load_before = os.getloadavg()
    plan = sweeps(args.quick)
    results = {name: [] for name in plan}
    for _ in range(args.rounds):
        for name, (config, sweep, n) in plan.items():
            results[name].append(one_round(name, config, sweep, n))
            print(f"{name}: {results[name][-1]}", file=sys.stderr, flush=True)
    load_after = os.getloadavg()

    def med(name, key):
        return statistics.median(r[key] for r in results[name])

    print(f"{args.rounds} round(s) on {os.cpu_count()} cores; load average (1, 5, 15 min) "
          f"{' '.join(f'{x:.2f}' for x in load_before)} at the start, {' '.join(f'{x:.2f}' for x in load_after)} "
          "at the end (the machine is shared: other work running at the same time slows every number)\n")
    print("| sweep | runs | figures | train s (sweep, -j 1) | runs s (their wall_time) | first plot s "
          "| second plot s | first / train | first / runs |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, (_, _, n) in plan.items():
        train, own, first, second = (med(name, k) for k in ("train", "runs", "first", "second"))
        print(f"| {name} | {n} | {results[name][0]['figures']} | {train:.2f} | {own:.2f} | {first:.2f} | {second:.2f} "
              f"| {first / train:.2f} | {first / own:.2f} |")
    print("\nCommands (each in a fresh temporary folder; digits.yaml for the 81 runs:",
          json.dumps(plan["81 small runs"][0]) + "):")
    for name, (_, sweep, _) in plan.items():
        print(f"    dropcli {shlex.join(sweep)} && dropcli plot runs/ && dropcli plot runs/")
    big = "81 small runs"
    first, train, own = med(big, "first"), med(big, "train"), med(big, "runs")
    print()
    for ok, text in (
        (first <= train, f"first plot of the 81-run sweep {first:.2f} s <= its sweep's time {train:.2f} s"),
        (first <= own, f"first plot of the 81-run sweep {first:.2f} s <= its runs' own training time {own:.2f} s "
                       "(the stricter reading)"),
        *((med(n, "second") <= 1.5, f"second plot of {n} {med(n, 'second'):.2f} s <= 1.5 s") for n in plan),
    ):
        print(f"target {'met' if ok else 'missed'}: {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

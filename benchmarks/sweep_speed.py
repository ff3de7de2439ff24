"""Sweep throughput (issue 18): does `dropcli sweep` use every core by default, and does
its worker start-up pay for itself on the README's small sweep?

    python benchmarks/sweep_speed.py [--rounds 3] [--epochs 250] [--quick]

Each arm runs `dropcli` as a fresh process in a fresh temporary folder (its `runs/`), so
nothing is reused or skipped: afterwards every run's summary.json must say completed and
not reused, and meta.json gives the BLAS threads it trained with. The arms alternate
(A B C ... A B C ...), so the shared machine's drift hits them all alike:

(a) a 4-run sweep (digits, hidden [512, 512], --epochs epochs, seeds 0-3) pinned to one
    core (`taskset -c 0 ... -j 1`: dropcli sees one core, so one BLAS thread; the
    reference), with `-j 1`, with `-j 2` and with the default (`-j auto`);
(b) the README's quick start command, `dropcli sweep --keep 0.25,0.5,1 && dropcli plot runs/`,
    with `-j 1` (the reference) and with the default;
(c) `dropcli --help`: the median of 7 calls per round (bench.py's ``help_time``).

It prints a markdown table (medians and minima over the rounds; speed-up = the reference's
median / the arm's median), the load average before and after, the cores, the commands,
and whether issue 18's targets are met: (a) default >= 1.8x one core (on 2 cores), (b)
default not slower than -j 1, (c) --help <= 0.4 s. It exits 0 either way (a benchmark
informs, it does not test); it exits 1 only if a command fails or its runs did not train.
--quick: 2 epochs everywhere and one round, to check that the script works.
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
from dataclasses import dataclass, field
from pathlib import Path

from bench import blas_info, help_time

SWEEP4 = ["sweep", "--keep", "0.5", "--seeds", "0,1,2,3", "--set", "data.dataset=digits",
          "--set", "model.hidden_dims=[512,512]"]
README_SWEEP, README_PLOT = ["sweep", "--keep", "0.25,0.5,1"], ["plot", "runs/"]
# dropcli chooses its BLAS threads itself; a cap left in the caller's shell would hide that.
ENV = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


@dataclass
class Arm:
    name: str
    steps: list[list[str]]  # dropcli's arguments, one list per command, run in turn in the same folder
    runs: int  # how many runs its sweep must train
    prefix: list[str] = field(default_factory=list)  # e.g. taskset
    reference: Arm | None = None  # None: it is its group's reference
    times: list[list[float]] = field(default_factory=list)  # per round, seconds per step
    threads: set = field(default_factory=set)  # blas_threads_limit of its runs

    def commands(self, exe: str = "dropcli") -> list[list[str]]:
        return [[*self.prefix, exe, *step] for step in self.steps]


def sweep_only(seconds: list[float]) -> float:
    return seconds[0]  # an arm's first command is its sweep


def run_arm(arm: Arm, exe: str) -> None:
    """Run the arm's commands once, in a fresh folder; append their wall times."""
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for command, argv in zip(arm.commands(), arm.commands(exe)):
            start = time.perf_counter()
            done = subprocess.run(argv, cwd=tmp, env=ENV, capture_output=True, text=True)
            times.append(time.perf_counter() - start)
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
                sys.exit(f"{arm.name}: `{shlex.join(command)}` exited {done.returncode}: {last}")
        arm.threads |= trained_threads(Path(tmp) / "runs", arm)
    arm.times.append(times)


def trained_threads(runs_dir: Path, arm: Arm) -> set:
    """The blas_threads_limit values of the runs in ``runs_dir`` (runs/<sweep>/<run>/);
    exits unless exactly ``arm.runs`` of them trained here (completed, not reused)."""
    metas = sorted(runs_dir.glob("*/*/meta.json"))
    summaries = [json.loads((m.parent / "summary.json").read_text()) for m in metas]
    trained = [s for s in summaries if s.get("status") == "completed" and not s.get("reused_from")]
    if len(trained) != arm.runs or len(metas) != arm.runs:
        sys.exit(f"{arm.name}: {len(trained)} of {len(metas)} runs trained in {runs_dir}, expected {arm.runs}")
    return {json.loads(m.read_text())["blas_threads_limit"] for m in metas}


def make_arms(epochs: int, quick: bool) -> list[Arm]:
    """The arms, in the order of a round: (a)'s reference, -j 1, -j 2, default; (b)'s reference, default."""
    sweep4 = [*SWEEP4, "--set", f"train.epochs={epochs}"]
    readme = [*README_SWEEP, *(["--set", "train.epochs=2"] if quick else [])]
    one_core = Arm("4 runs, one core (-j 1 pinned)", [[*sweep4, "-j", "1"]], 4, prefix=["taskset", "-c", "0"])
    readme_1 = Arm("README, -j 1", [[*readme, "-j", "1"], README_PLOT], 9)
    arms = [one_core,
            Arm("4 runs, -j 1", [[*sweep4, "-j", "1"]], 4, reference=one_core),
            Arm("4 runs, -j 2", [[*sweep4, "-j", "2"]], 4, reference=one_core),
            Arm("4 runs, default (-j auto)", [sweep4], 4, reference=one_core),
            readme_1,
            Arm("README, default (-j auto)", [readme, README_PLOT], 9, reference=readme_1)]
    return arms


def speedup(arm: Arm, pick=sum) -> float:
    """The reference's median / the arm's median, of ``pick(seconds per step)``."""
    return statistics.median(pick(t) for t in arm.reference.times) / statistics.median(pick(t) for t in arm.times)


def table(arms: list[Arm], help_times: list[float]) -> list[str]:
    lines = ["| arm | median s | min s | speed-up vs reference | BLAS threads per run | rounds |",
             "|---|---|---|---|---|---|"]
    for arm in arms:
        parts = [("", sum)] if len(arm.steps) == 1 else [(": sweep + plot", sum), (": sweep only", sweep_only)]
        for label, pick in parts:  # the sweep alone too: there -j makes all the difference
            mine = [pick(t) for t in arm.times]
            lines.append(f"| {arm.name}{label} | {statistics.median(mine):.2f} | {min(mine):.2f} | "
                         f"{f'{speedup(arm, pick):.2f}x' if arm.reference else 'reference'} | "
                         f"{', '.join(map(str, sorted(arm.threads)))} | {len(mine)} |")
    lines.append(f"| dropcli --help (median of 7 per round) | {statistics.median(help_times):.2f} | "
                 f"{min(help_times):.2f} | | | {len(help_times)} |")
    return lines


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=None, help="rounds of all arms (default 3; 1 with --quick)")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs per run of the 4-run sweep (default 250, ~13 s per run on one core; 2 with --quick)")
    p.add_argument("--quick", action="store_true", help="tiny sizes, one round: does the script work?")
    a = p.parse_args()
    rounds = a.rounds or (1 if a.quick else 3)
    epochs = a.epochs or (2 if a.quick else 250)
    exe = shutil.which("dropcli")
    if exe is None or shutil.which("taskset") is None:
        sys.exit("needs `dropcli` (pip install -e .) and `taskset` (util-linux) on PATH")
    arms = make_arms(epochs, a.quick)
    one_core, default, readme = arms[0], arms[3], arms[5]
    load_start, help_times = os.getloadavg(), []
    print(f"{os.cpu_count()} CPUs, {len(os.sched_getaffinity(0))} available to this process; BLAS: {blas_info()}; "
          f"load average {load_start[0]:.2f} at the start", flush=True)
    for r in range(1, rounds + 1):
        for arm in arms:
            run_arm(arm, exe)
            print(f"round {r}/{rounds}: {arm.name}: {sum(arm.times[-1]):.2f} s", flush=True)
        help_times.append(help_time())
        print(f"round {r}/{rounds}: dropcli --help: {help_times[-1]:.2f} s", flush=True)
    if one_core.threads != {1}:
        print(f"WARNING: the one-core reference trained with {one_core.threads} BLAS threads, not 1")
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end ({load_start[0]:.2f} at the start); "
          f"{os.cpu_count()} CPUs\n")
    print("\n".join(table(arms, help_times)))
    print("\nCommands (each in a fresh empty folder; `dropcli` is", exe + "):")
    for arm in arms:
        print(f"    {arm.name}: {' && '.join(shlex.join(c) for c in arm.commands())}")
    print()
    targets = [(f"(a) 4-run sweep, default >= 1.8x one core (on 2 cores; this machine has {os.cpu_count()})",
                speedup(default) >= 1.8, f"{speedup(default):.2f}x"),
               ("(b) README command, default not slower than -j 1 (sweep + plot)", speedup(readme) >= 1.0,
                f"{speedup(readme):.2f}x, the sweep alone {speedup(readme, sweep_only):.2f}x"),
               ("(c) dropcli --help <= 0.4 s", statistics.median(help_times) <= 0.4,
                f"{statistics.median(help_times):.2f} s")]
    for name, met, value in targets:
        print(f"target {name}: {value}: {'met' if met else 'missed'}")


if __name__ == "__main__":
    main()

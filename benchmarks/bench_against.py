"""Speed against another revision, side by side in one run: the what-if per call (in process, the
cases of bench_whatif.py) and the serving simulator's wall time (bench_simulate.py's run),
alternating the two trees round by round so that a shared machine's drift falls on both. Prints
each tree's median and the ratio this tree / the other.

Run: .venv/bin/python benchmarks/bench_against.py [REV] [rounds] [requests]
(REV defaults to HEAD~1; it is checked out in a temporary git worktree, removed afterwards.)"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = r"""
import json, statistics, sys, time
sys.path.insert(0, sys.argv[1] + "/benchmarks")
import simulator
from simulator import whatif
from bench_whatif import CASES  # the tree's own what-if benchmark cases
from bench_simulate import run_once  # and its serving run
assert simulator.__file__.startswith(sys.argv[1]), simulator.__file__
out = {}
for i, case in enumerate(CASES):
    whatif(**case)
    times = []
    for _ in range(100):
        t = time.perf_counter(); whatif(**case); times.append(time.perf_counter() - t)
    out[f"whatif_case{i}_ms"] = 1e3 * statistics.median(times)
out["simulate_s"] = run_once(int(sys.argv[2]))[0]
print(json.dumps(out))
"""


def measure(tree: Path, requests: int) -> dict:
    env = {"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin", "INFERCAST_HOME": tempfile.gettempdir() + "/bench-home"}
    done = subprocess.run([sys.executable, "-c", PROBE, str(tree), str(requests)], cwd=tree, env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(rev: str = "HEAD~1", rounds: int = 5, requests: int = 20_000) -> None:
    other = Path(tempfile.mkdtemp(prefix="infercast-rev-"))
    subprocess.run(["git", "worktree", "add", "--detach", str(other), rev], cwd=ROOT, check=True, capture_output=True)
    try:
        runs: dict[str, list[dict]] = {"this": [], rev: []}
        for r in range(rounds):
            order = [("this", ROOT), (rev, other)] if r % 2 == 0 else [(rev, other), ("this", ROOT)]
            for name, tree in order:
                runs[name].append(measure(tree, requests))
        for key in runs["this"][0]:
            mine = statistics.median(x[key] for x in runs["this"])
            theirs = statistics.median(x[key] for x in runs[rev])
            print(f"{key}: this {mine:.4g}, {rev} {theirs:.4g}, ratio {mine / theirs:.3f} (median of {rounds} rounds)")
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(other)], cwd=ROOT, capture_output=True)
        shutil.rmtree(other, ignore_errors=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[0] if args else "HEAD~1", *(int(a) for a in args[1:3]))

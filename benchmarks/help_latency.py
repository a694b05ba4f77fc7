"""Seconds until `latentlab --help` (and a few `CMD --help`) has answered: best and median of N runs.

    python benchmarks/help_latency.py                       # this checkout
    python benchmarks/help_latency.py --old /tmp/old        # also another checkout (e.g. `git archive` of an
                                                            # earlier commit), run the same way, interleaved
Each run is a fresh `python -m latentlab ... --help` process (what the console script does: this checkout's
`latentlab.cli.main`, or an older checkout's `cli.main`); the first line is `python -c pass`, the
interpreter's own start-up on this machine.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMANDS = (["--help"], ["edit", "--help"], ["ppl", "--help"], ["train", "gan", "--help"])


def seconds(argv, pythonpath, runs):
    env = dict(os.environ, PYTHONPATH=pythonpath, PYTHONSAFEPATH="1")  # that checkout's latentlab, not the cwd
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        out.append(time.perf_counter() - t)
    return min(out), statistics.median(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--old", default=None, help="Another checkout to time the same way (the 'before' column).")
    args = ap.parse_args()
    best, med = seconds([sys.executable, "-c", "pass"], ROOT, args.runs)
    print(f"{'python -c pass':<22} best {best:.3f} s  median {med:.3f} s")
    for cmd in COMMANDS:
        line = f"{'latentlab ' + ' '.join(cmd):<22}"
        if args.old:
            best, med = seconds([sys.executable, "-m", "latentlab", *cmd], args.old, args.runs)
            line += f" before: best {best:.3f} s  median {med:.3f} s   after:"
        best, med = seconds([sys.executable, "-m", "latentlab", *cmd], ROOT, args.runs)
        print(f"{line} best {best:.3f} s  median {med:.3f} s")


if __name__ == "__main__":
    main()

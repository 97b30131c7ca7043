"""How fast mailer.parse reads a backlog: mails/s on one core, and how many had defects.

Generates the consultation corpus with ../shared/tools/gen_corpus.py (5,000 mails by default,
one NNNNNN.eml per mail) into a temporary folder, reads every file into memory, then parses
them all `--rounds` times and reports the best round. The stdlib compat32 parse alone is timed
too, to show what share of the time is ours.

    .venv/bin/python bench/parse_speed.py [-n 5000] [--rounds 5] [--corpus DIR]

The goal: ≥ 2,000 mails/s, so that ingesting a 5,000-mail backlog at ≥ 400 mails/s including
the database leaves most of the time to the database.
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from email import policy
from email.parser import BytesParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mailer.parse import parse  # noqa: E402  (after the path set-up, to run as a script)

GEN_CORPUS = ROOT.parent / "shared" / "tools" / "gen_corpus.py"


def generate(n: int, out: Path) -> None:
    """Write n generated mails into `out` (gen_corpus.py: NNNNNN.eml files + manifest.jsonl)."""
    if not GEN_CORPUS.is_file():
        sys.exit(f"no corpus generator at {GEN_CORPUS} (a clone without ../shared); use --corpus DIR")
    subprocess.run([sys.executable, str(GEN_CORPUS), "-n", str(n), "-o", str(out)], check=True)


def best_rates(
    mails: list[bytes], steps: dict[str, Callable[[bytes], object]], rounds: int
) -> dict[str, float]:
    """Mails per second of each step's fastest pass over all mails; the steps take turns, so
    that another process slowing the machine for a while slows them alike."""
    best = dict.fromkeys(steps, float("inf"))
    for _ in range(rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            for raw in mails:
                step(raw)
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: len(mails) / seconds for name, seconds in best.items()}


def report(mails: list[bytes], rounds: int) -> None:
    defects: collections.Counter[str] = collections.Counter()
    with_defects = 0
    for raw in mails:
        found = parse(raw).defects
        with_defects += bool(found)
        defects.update(found)
    rates = best_rates(
        mails, {"parse": parse, "compat32": BytesParser(policy=policy.compat32).parsebytes}, rounds
    )
    rate, base_rate = rates["parse"], rates["compat32"]
    print(f"mails:               {len(mails)} ({sum(map(len, mails)) / 1e6:.1f} MB)")
    print(f"parse:               {rate:,.0f} mails/s (best of {rounds})")
    print(f"compat32 alone:      {base_rate:,.0f} mails/s (parse adds {100 * (base_rate / rate - 1):.0f}%)")
    print(f"mails with defects:  {with_defects}")
    for defect, count in defects.most_common(10):
        print(f"  {count:5d}  {defect}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=5000, help="mails to generate (default 5000)")
    ap.add_argument("--rounds", type=int, default=5, help="timed passes; the best counts (default 5)")
    ap.add_argument("--corpus", type=Path, help="parse the .eml files of this folder instead of generating")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="parse-speed-") as tmp:
        folder = args.corpus or Path(tmp)
        if args.corpus is None:
            generate(args.n, folder)
        mails = [p.read_bytes() for p in sorted(folder.glob("*.eml"))]
    if not mails:
        sys.exit(f"no .eml files in {folder}")
    report(mails, args.rounds)


if __name__ == "__main__":
    main()

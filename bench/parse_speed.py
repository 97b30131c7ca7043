"""How fast mailer.intake.parse reads a backlog: mails/s on one core, and how many had defects; and
what the reply trimmer (mailer.decide.trim) costs per mail and how well it trims.

Generates the consultation corpus with ../shared/tools/gen_corpus.py (5,000 mails by default,
one NNNNNN.eml per mail) into a temporary folder, reads every file into memory, then parses
them all `--rounds` times and reports the best round. The stdlib compat32 parse alone is timed
too, to show what share of the time is ours. The trimmer is timed on the parsed text of every
mail (what the store step gives it), in CPU time per mail, and scored on the public
email_reply_trimmer corpus (../shared/corpora/email_reply_trimmer: the visible text must equal
its expected `trimmed/` text; the goal is ≥ 90% of the 64 bodies, at ≤ 0.2 ms per mail).

    .venv/bin/python bench/parse_speed.py [-n 5000] [--rounds 5] [--corpus DIR]

The goal: ≥ 2,000 mails/s, so that ingesting a 5,000-mail backlog at ≥ 400 mails/s including
the database leaves most of the time to the database.
"""

from __future__ import annotations

import argparse
import collections
import statistics
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

from mailer.decide.trim import trim  # noqa: E402
from mailer.intake.parse import parse  # noqa: E402  (after the path set-up, to run as a script)

GEN_CORPUS = ROOT.parent / "shared" / "tools" / "gen_corpus.py"
TRIM_CORPUS = ROOT.parent / "shared" / "corpora" / "email_reply_trimmer"


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


def trim_cost_ms(texts: list[str], rounds: int) -> tuple[float, float]:
    """(best, median) CPU milliseconds per text of `trim` over all texts, over `rounds` passes.
    Process CPU time, not wall time: other work on the machine then matters less."""
    passes = []
    for _ in range(rounds):
        start = time.process_time()
        for text in texts:
            trim(text)
        passes.append((time.process_time() - start) * 1000 / len(texts))
    return min(passes), statistics.median(passes)


def trim_score() -> tuple[int, int] | None:
    """(bodies whose visible text equals the expected one, bodies) on email_reply_trimmer."""
    names = sorted(p.name for p in (TRIM_CORPUS / "emails").glob("*.txt"))
    if not names:
        return None
    matched = sum(
        trim((TRIM_CORPUS / "emails" / n).read_text(encoding="utf-8"))[0]
        == (TRIM_CORPUS / "trimmed" / n).read_text(encoding="utf-8").strip()
        for n in names
    )
    return matched, len(names)


def report_trim(mails: list[bytes], rounds: int) -> None:
    texts = [parse(raw).text for raw in mails]
    best, median = trim_cost_ms(texts, rounds)
    quoted = sum(bool(trim(t)[1]) for t in texts)
    print(f"trim:                {best:.3f} ms CPU per mail (median {median:.3f}; best of {rounds})")
    print(f"  mails with something trimmed: {quoted} of {len(texts)}")
    score = trim_score()
    if score is None:
        print(f"  no corpus at {TRIM_CORPUS}: trimmer score not measured")
    else:
        print(f"  email_reply_trimmer corpus: {score[0]}/{score[1]} = {score[0] / score[1]:.1%}")


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
    report_trim(mails, args.rounds)


if __name__ == "__main__":
    main()

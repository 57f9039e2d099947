"""False rejections of the cleaning step on a real, clean dataset (GSM8K train).

    python benchmarks/curate_clean.py [--bench FOLDER]   (default: the files shipped with fl)

Every GSM8K train solution is a genuine record, so anything the default `clean:` settings drop
is a false rejection. Prints JSON: records, rejections by reason, the repetition rate (target
<= 0.1%) and the rejected solutions' first characters.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def false_rejections(path: Path) -> dict:
    from datatrove.data import Document

    from frontload.curate.clean import CleanFilter
    from frontload.curate.mapping import render
    from frontload.curate.recipe import CleanConfig

    check = CleanFilter(CleanConfig())
    reasons: Counter = Counter()
    examples: list[dict] = []
    from frontload.benchdata import open_text

    with open_text(path) as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    start = time.perf_counter()
    for index, row in enumerate(rows):
        meta = {"prompt": row["question"], "response": row["answer"]}
        doc = Document(text=render(row["question"], row["answer"]), id=str(index), metadata=meta)
        verdict = check.filter(doc)
        if verdict is not True:
            reasons[verdict[1]] += 1
            examples.append({"line": index + 1, "reason": verdict[1], "answer": row["answer"][:80]})
    seconds = time.perf_counter() - start
    return {
        "file": path.name,
        "records": len(rows),
        "rejected": dict(reasons),
        "repetition_rate": reasons["repetition"] / len(rows),
        "any_reason_rate": sum(reasons.values()) / len(rows),
        "records_per_s": round(len(rows) / seconds),
        "examples": examples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bench", type=Path, default=None, help="folder holding gsm8k_train.jsonl")
    args = parser.parse_args()
    from frontload import benchdata

    path = benchdata.find_file(args.bench or benchdata.FOLDER, "gsm8k_train.jsonl")
    if path is None:
        raise SystemExit(f"{args.bench}: no gsm8k_train.jsonl[.gz] in it")
    print(json.dumps(false_rejections(path), indent=1))


if __name__ == "__main__":
    main()

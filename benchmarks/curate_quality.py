"""Quality of near-dedup and decontamination on injected cases.

    python benchmarks/curate_quality.py --records 5000 [--bench FOLDER]  (default: the shipped files)

Near-dedup: the whole `fl curate run` on a generated dump; recall = injected paraphrase pairs
collapsed to one record, precision = near-dedup removals that are injected copies, and merges of
number-only variant pairs (must be zero). Decontamination: benchmark questions put into records
verbatim and lightly edited (casing, spacing, punctuation, two swapped words), and the false-flag
rate on the generated records that hold no benchmark text. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.curate.helpers import read_folder, sample_recipe  # noqa: E402


def dedup_quality(records: int, folder: Path) -> dict:
    from frontload.config import validate
    from frontload.curate.pipeline import run_curation
    from frontload.curate.recipe import CurateRecipe
    from frontload.quickstart.sample import generate_sample
    from frontload.workspace import Workspace

    sample = folder / "sample"
    manifest = generate_sample(sample, records=records, seed=21)
    recipe = validate(CurateRecipe, sample_recipe(sample, tasks=4, workers=2), "benchmark")
    ws = Workspace.resolve(folder / "ws")
    run_curation(recipe, ws)
    key = lambda row: row["prompt"] or row["text"]  # noqa: E731
    pool = {key(row) for row in read_folder(ws.pool_dir)}
    near_removed = [key(row) for row in read_folder(ws.removed_dir / "near_dedup")]
    exact_removed = {key(row) for row in read_folder(ws.removed_dir / "exact_dedup")}
    pairs = [[a.strip(), b.strip()] for a, b in manifest["injected"]["near"]]
    caught = sum(1 for a, b in pairs if not (a in pool and b in pool))
    copies = {text for pair in pairs for text in pair}
    # leaked benchmark questions, verbatim and lightly edited, are paraphrases of each other too
    copies |= {item["text"].strip() for item in manifest["injected"]["bench"]}
    true_removals = sum(1 for text in near_removed if text in copies)
    variants = [[a.strip(), b.strip()] for a, b in manifest["injected"]["numbers"]]
    merged = sum(1 for a, b in variants if a not in pool or b not in pool)
    return {
        "records": manifest["records"],
        "near_pairs": len(pairs),
        "near_recall": round(caught / max(1, len(pairs)), 4),
        "near_removed": len(near_removed),
        "near_precision": round(true_removals / max(1, len(near_removed)), 4),
        "number_variant_pairs": len(variants),
        "number_variant_merges": merged,
        "exact_removed": len(exact_removed),
    }


def decontam_quality(bench: Path | None, folder: Path, clean_records: int) -> dict:
    from frontload.benchdata import find_file, open_text
    from frontload.curate.decontam import DecontamFilter, build_index
    from frontload.curate.recipe import DecontamConfig
    from frontload.quickstart import sample_text as T
    from frontload.quickstart.sample import generate_sample

    rng = random.Random(5)
    if bench is not None and bench.is_dir():
        files = {
            "gsm8k": find_file(bench, "gsm8k_test.jsonl"),
            "math500": find_file(bench, "math500_test.jsonl"),
            "humaneval": find_file(bench, "humaneval_HumanEval.jsonl.gz"),
            "mbpp": find_file(bench, "mbpp_sanitized_427.json"),
        }
        specs = [{"name": name, "path": str(path)} for name, path in files.items()]
        specs.append({"name": "mmlu", "path": str(bench / "mmlu" / "test" / "*_test.csv*")})
        with open_text(files["gsm8k"]) as handle:
            lines = [line for line in handle if line.strip()]
        questions = [json.loads(line)["question"] for line in rng.sample(lines, 300)]
        with open_text(files["math500"]) as handle:
            lines = [line for line in handle if line.strip()]
        questions += [json.loads(line)["problem"] for line in rng.sample(lines, 100)]
    else:
        sample = folder / "mini"
        generate_sample(sample, records=50)
        specs = [{"name": "gsm8k", "path": str(sample / "benchmarks" / "mini_gsm8k.jsonl")}]
        questions = [item["question"] for item in T.BENCHMARK_MATH]
    config = DecontamConfig(benchmarks=specs)
    build_index(config).save(folder / "index.npz")
    step = DecontamFilter(folder / "index.npz", "flag")

    def record(question: str) -> str:
        return f"{question}\n\nLet me solve this step by step. The answer follows below."

    verbatim = sum(bool(step.matches(record(q), q)) for q in questions)
    edited_questions = [T.light_edit(q, rng, words=2) for q in questions]
    edited = sum(bool(step.matches(record(q), q)) for q in edited_questions)
    clean = folder / "clean"
    manifest = generate_sample(clean, records=clean_records, seed=99)
    leaks = {item["text"].strip() for item in manifest["injected"]["bench"]}
    texts = []
    for line in (clean / "math_qa.jsonl").read_bytes().splitlines():
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if isinstance(row, dict) and row.get("question") and row["question"].strip() not in leaks:
            texts.append((f"{row['question']}\n\n{row.get('answer') or ''}", row["question"]))
    import gzip

    with gzip.open(clean / "web.jsonl.gz", "rt") as handle:
        texts += [(json.loads(line)["text"], "") for line in handle]
    false_flags = sum(bool(step.matches(text, prompt)) for text, prompt in texts)
    return {
        "benchmarks": [spec["name"] for spec in specs],
        "questions": len(questions),
        "verbatim_recall": round(verbatim / len(questions), 4),
        "edited_recall": round(edited / len(questions), 4),
        "clean_records": len(texts),
        "false_flag_rate": round(false_flags / max(1, len(texts)), 5),
    }


def main() -> None:
    from frontload import benchdata

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=5000, help="generated dump size (dedup)")
    parser.add_argument("--bench", type=Path, default=benchdata.FOLDER, help="benchmark folder")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="fl-quality-"))
    try:
        result = {
            "dedup": dedup_quality(args.records, folder / "dedup"),
            "decontam": decontam_quality(args.bench, folder, args.records),
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

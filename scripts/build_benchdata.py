"""Rebuild fl's shipped benchmark files and their manifest from a folder of the original files.

    python scripts/build_benchdata.py ORIGINALS [--out src/frontload/benchdata]

ORIGINALS is a folder laid out like the project's benchmark store (`gsm8k_test.jsonl`,
`mmlu/test/*_test.csv`, ...; see SOURCES below for every file, where it was published and under
which licence). Each original is gzip-compressed deterministically (no name or time in the gzip
header, level 9), so the same originals give the same shipped bytes; a file that is already
published compressed (HumanEval) is copied as it is. The manifest records, per file, the sha256 of
the shipped file and of the original, their sizes and the record count, so
`tests/test_benchdata.py` can prove every shipped file is the original, whole.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import hashlib
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from frontload.benchdata import count_records  # noqa: E402

MIT = "MIT"
MAA = (
    "Problems (c) Mathematical Association of America, as published on the Art of Problem Solving "
    "wiki; no open data licence is stated. Shipped, as open evaluation suites (NeMo-Skills, "
    "Qwen2-Math, lighteval) redistribute them, for research evaluation only"
)

# name -> what it is, the original file(s) under ORIGINALS, where they were published, licence.
SOURCES: dict[str, dict] = {
    "gsm8k_test": {
        "kind": "benchmark",
        "task": "gsm8k",
        "originals": "gsm8k_test.jsonl",
        "source": "https://github.com/openai/grade-school-math (grade_school_math/data/test.jsonl)",
        "license": MIT,
    },
    "gsm8k_train": {
        "kind": "few-shot pool and training text",
        "task": "gsm8k",
        "originals": "gsm8k_train.jsonl",
        "source": "https://github.com/openai/grade-school-math (grade_school_math/data/train.jsonl)",
        "license": MIT,
        "note": "the gsm8k task's few-shot examples, and real training text for curation recipes",
    },
    "math500_test": {
        "kind": "benchmark",
        "task": "math500",
        "originals": "math500_test.jsonl",
        "source": "https://github.com/openai/prm800k (prm800k/math_splits/test.jsonl, MATH-500)",
        "license": MIT,
    },
    "math_test_minus_math500": {
        "kind": "training text (not a benchmark)",
        "task": None,
        "originals": "math_test_minus_math500.jsonl",
        "source": "https://github.com/hendrycks/math (test split) minus MATH-500: the 4,500 test "
        "problems PRM800K's split moves into training",
        "license": MIT,
        "note": "human-written worked solutions (answer in the last \\boxed{}), levels 1-5; never "
        "overlaps MATH-500; used as real long-solution training text (DSHQ), never evaluated on",
    },
    "aime24": {
        "kind": "benchmark",
        "task": "aime24",
        "originals": "aime24.jsonl",
        "source": "AIME 2024 I and II (artofproblemsolving.com wiki), NeMo-Skills layout "
        "(https://github.com/NVIDIA/NeMo-Skills, nemo_skills/dataset/aime24)",
        "license": MAA,
    },
    "aime25": {
        "kind": "benchmark",
        "task": "aime25",
        "originals": "aime25.jsonl",
        "source": "AIME 2025 I and II (artofproblemsolving.com wiki), NeMo-Skills layout "
        "(https://github.com/NVIDIA/NeMo-Skills, nemo_skills/dataset/aime25)",
        "license": MAA,
    },
    "amc23": {
        "kind": "benchmark",
        "task": "amc23",
        "originals": "amc23.jsonl",
        "source": "AMC 2023 12A/12B (artofproblemsolving.com wiki), as in "
        "https://github.com/QwenLM/Qwen2-Math (evaluation/data/amc23/test.jsonl)",
        "license": MAA,
    },
    "humaneval": {
        "kind": "benchmark",
        "task": "humaneval",
        "originals": "humaneval_HumanEval.jsonl.gz",
        "source": "https://github.com/openai/human-eval (data/HumanEval.jsonl.gz)",
        "license": MIT,
    },
    "mbpp": {
        "kind": "benchmark",
        "task": "mbpp",
        "originals": "mbpp_sanitized_427.json",
        "source": "https://github.com/google-research/google-research/tree/master/mbpp "
        "(sanitized-mbpp.json; Austin et al. 2021, Program Synthesis with Large Language Models)",
        "license": "CC-BY-4.0",
    },
    "mmlu_test": {
        "kind": "benchmark",
        "task": "mmlu",
        "originals": "mmlu/test/*_test.csv",
        "source": "https://github.com/hendrycks/test (test split), one CSV per subject with the "
        "header question,choice0..choice3,answer (an index 0-3), as the hub's cais/mmlu exports it",
        "license": MIT,
    },
    "mmlu_dev": {
        "kind": "few-shot pool",
        "task": "mmlu",
        "originals": "mmlu/dev/*_dev.csv",
        "source": "https://github.com/hendrycks/test (dev split), one CSV per subject, same layout",
        "license": MIT,
        "note": "the 5 dev questions per subject the MMLU protocol draws its shots from",
    },
    "mmlu_pro_test": {
        "kind": "benchmark",
        "task": "mmlu_pro",
        "originals": "mmlu_pro_test_12032.jsonl",
        "source": "https://huggingface.co/datasets/TIGER-Lab/MMLU-Pro (test split)",
        "license": MIT,
    },
    "mmlu_pro_validation": {
        "kind": "few-shot pool",
        "task": "mmlu_pro",
        "originals": "mmlu_pro_validation_70.jsonl",
        "source": "https://huggingface.co/datasets/TIGER-Lab/MMLU-Pro (validation split)",
        "license": MIT,
        "note": "the chain-of-thought shots MMLU-Pro's protocol draws from",
    },
}

LEFT_OUT = {
    "gpqa_diamond": "its authors gate it (accepted terms on the hub, no examples in plain text "
    "online); users who have it store it with `fl evaluate add-benchmark gpqa_diamond FILE`",
    "livecodebench": "no licence that allows redistribution: livecodebench/code_generation_lite "
    "declares only 'cc' (no Creative Commons variant; it was apache-2.0 until June 2024), the "
    "LiveCodeBench repository has no LICENSE file, and its problem statements are scraped from "
    "LeetCode, AtCoder and Codeforces, whose terms keep their copyright; the MIT tag of the "
    "DeepCoder re-upload (agentica-org/DeepCoder-Preview-Dataset) cannot grant rights upstream "
    "never gave. Users store it with `fl evaluate add-benchmark livecodebench "
    "hf:livecodebench/code_generation_lite` or a local file",
}


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ship(original: Path, target: Path) -> None:
    """Compress `original` into `target` with a header free of names and times (reproducible)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if original.name.endswith(".gz"):
        shutil.copyfile(original, target)
        return
    with (
        open(original, "rb") as source,
        open(target, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as out,
    ):
        shutil.copyfileobj(source, out)


def build(originals: Path, out: Path, sources: dict[str, dict] = SOURCES) -> dict:
    """Write out/files/* and out/manifest.json from the originals; returns the manifest."""
    files_dir = out / "files"
    if files_dir.exists():
        shutil.rmtree(files_dir)  # the folder is this script's: nothing stale survives a rebuild
    datasets = {}
    for name, spec in sources.items():
        matches = sorted(glob.glob(str(originals / spec["originals"])))
        if not matches:
            raise SystemExit(f"{originals / spec['originals']}: not found")
        entries = []
        for found in map(Path, matches):
            relative = found.relative_to(originals).as_posix()
            shipped = relative if relative.endswith(".gz") else f"{relative}.gz"
            ship(found, files_dir / shipped)
            entries.append(
                {
                    "path": shipped,
                    "original": relative,
                    "sha256": sha256(files_dir / shipped),
                    "original_sha256": sha256(found),
                    "bytes": (files_dir / shipped).stat().st_size,
                    "original_bytes": found.stat().st_size,
                    "records": count_records(files_dir / shipped),
                }
            )
        pattern = spec["originals"]
        datasets[name] = {
            "path": pattern if pattern.endswith(".gz") else f"{pattern}.gz",
            **{key: value for key, value in spec.items() if key != "originals"},
            "records": sum(entry["records"] for entry in entries),
            "files": entries,
        }
    manifest = {
        "about": "Public benchmark files shipped with fl (gzip-compressed originals). Rebuild with "
        "scripts/build_benchdata.py; tests/test_benchdata.py checks every file against this.",
        "datasets": datasets,
        "left_out": LEFT_OUT,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("originals", type=Path, help="folder holding the original files")
    parser.add_argument("--out", type=Path, default=ROOT / "src" / "frontload" / "benchdata")
    args = parser.parse_args()
    manifest = build(args.originals.resolve(), args.out)
    total = sum(f["bytes"] for d in manifest["datasets"].values() for f in d["files"])
    original = sum(f["original_bytes"] for d in manifest["datasets"].values() for f in d["files"])
    print(
        json.dumps(
            {
                "datasets": len(manifest["datasets"]),
                "shipped_bytes": total,
                "original_bytes": original,
                "records": {k: v["records"] for k, v in manifest["datasets"].items()},
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()

"""A realistic raw dump made by the project: math word problems with short and long worked
solutions of mixed quality, code tasks, chat science QA and web-like text, with the mess real dumps
have (exact and near duplicates, number-only variants, malformed lines, benchmark leaks).

`manifest.json` records what was injected so tests and benchmarks can score dedup and decontam.
"""

from __future__ import annotations

import gzip
import json
import random
import re
from pathlib import Path
from typing import Any

from frontload.benchdata import find_file, open_text
from frontload.errors import ConfigError
from frontload.quickstart import sample_text as T

DEFAULT_RECORDS = 2000
SHARD_RECORDS = 10_000  # records per output file, so large dumps split over several tasks


def _write_jsonl(path: Path, lines: list[bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(tmp, "wb") as handle:  # type: ignore[operator]
        for line in lines:
            handle.write(line + b"\n")
    tmp.replace(path)


def _dump(record: dict[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False).encode("utf-8")


def _shards(name: str, suffix: str, rows: list, folder: Path, writer) -> list[str]:
    """Write rows in shards of SHARD_RECORDS; returns the file names."""
    names = []
    for start in range(0, max(1, len(rows)), SHARD_RECORDS):
        index = start // SHARD_RECORDS
        file = f"{name}{suffix}" if len(rows) <= SHARD_RECORDS else f"{name}-{index:03d}{suffix}"
        writer(folder / file, rows[start : start + SHARD_RECORDS])
        names.append(file)
    return names


def _write_parquet(path: Path, rows: list[dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(pa.Table.from_pylist(rows), tmp)
    tmp.replace(path)


def _malformed_lines(rng: random.Random, count: int, fields: tuple[str, str]) -> list[bytes]:
    """Broken JSON, non-UTF-8 bytes, null and missing fields."""
    prompt, response = fields
    kinds = [
        b'{"' + prompt.encode() + b'": "A train leaves at 3 pm and", "' + response.encode(),
        b'{"'
        + prompt.encode()
        + b'": "caf\xe9 prices rose by 20%", "'
        + response.encode()
        + b'": "x"}',
        _dump({prompt: None, response: "The answer is 4."}),
        _dump({prompt: "What is 7 times 8?"}),
        b"not json at all",
    ]
    return [kinds[i % len(kinds)] for i in range(count)] if count else []


def _fresh(make, seen: set[tuple[str, ...]]) -> list[dict[str, str]]:
    """Problems whose numbers no earlier problem used: two random problems with the same numbers
    (and other names) would be accidental near duplicates, muddying the injected ones."""
    while True:
        problems = make()
        keys = [tuple(re.findall(r"\d+", p["question"])) for p in problems]
        if not any(key in seen for key in keys):
            seen.update(keys)
            return problems


def _junk_math(rng: random.Random, count: int) -> list[dict[str, str]]:
    """Records cleaning must catch: empty, truncated and looping answers."""
    junk = []
    for index in range(count):
        record = T.math_problem(rng)
        kind = index % 3
        if kind == 0:
            record["answer"] = ""
        elif kind == 1:
            record["answer"] = record["answer"].split("\n")[0] + " so the total number of them is"
        else:
            record["answer"] = "\n".join(["I think the answer is 5."] * 12)
        junk.append(record)
    return junk


def _real_benchmark_items(bench_dir: Path | None, rng: random.Random) -> list[dict[str, str]]:
    """A few real GSM8K test questions from the benchmark folder (gsm8k_test.jsonl[.gz]), when one
    is given (`benchdata.FOLDER` is the copy shipped with fl)."""
    if bench_dir is None:
        return []
    path = find_file(Path(bench_dir), "gsm8k_test.jsonl")
    if path is None:
        raise ConfigError(
            f"benchmark folder {bench_dir}: no gsm8k_test.jsonl in it",
            "pass the folder holding gsm8k_test.jsonl (your copy of the benchmark files), or drop --bench",
        )
    with open_text(path) as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    picked = rng.sample(rows, k=min(3, len(rows)))
    return [{"question": row["question"], "answer": row["answer"]} for row in picked]


def generate_sample(
    out: Path,
    records: int = DEFAULT_RECORDS,
    seed: int = 0,
    bench_dir: Path | None = None,
) -> dict[str, Any]:
    """Write the dump into `out` and return its manifest (also saved as out/manifest.json)."""
    rng = random.Random(seed)
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(
            f"cannot create the sample folder {out}: {error.strerror}", "pick another --out"
        ) from error
    n_math = int(records * 0.40)
    n_long = max(12, int(records * 0.08))
    n_code = int(records * 0.17)
    n_chat = int(records * 0.15)
    n_web = max(1, records - n_math - n_long - n_code - n_chat)
    injected: dict[str, list] = {"exact": [], "near": [], "numbers": [], "bench": []}

    # Math word problems, short CoT (GSM8K layout: question/answer ending in '#### N').
    seen: set[tuple[str, ...]] = set()
    math = [_fresh(lambda: [T.math_problem(rng)], seen)[0] for _ in range(n_math)]
    for _ in range(max(2, n_math // 50)):  # exact duplicates
        original = rng.choice(math)
        math.append(dict(original))
        injected["exact"].append(original["question"])
    for _ in range(max(3, n_math // 33)):  # paraphrase-level near duplicates
        original = rng.choice(math[:n_math])
        copy = T.near_duplicate(original, rng)
        math.append(copy)
        injected["near"].append([original["question"], copy["question"]])
    for _ in range(max(3, n_math // 33)):  # the same problem with other numbers: must survive
        original, variant = _fresh(lambda: list(T.number_variant_pair(rng)), seen)
        math += [original, variant]
        injected["numbers"].append([original["question"], variant["question"]])
    leaks = [dict(item) for item in T.BENCHMARK_MATH] + _real_benchmark_items(bench_dir, rng)
    for item in leaks:
        math.append(item)
        injected["bench"].append({"text": item["question"], "edit": "verbatim"})
    for item in T.BENCHMARK_MATH[:3]:
        edited = T.light_edit(item["question"], rng)
        math.append({"question": edited, "answer": item["answer"]})
        injected["bench"].append({"text": edited, "edit": "light"})
    junk = _junk_math(rng, max(4, n_math // 60))
    math += junk
    injected["junk"] = len(junk)
    rng.shuffle(math)
    math_lines = [_dump(row) for row in math]
    bad = max(3, len(math_lines) // 200)
    for line in _malformed_lines(rng, bad, ("question", "answer")):
        math_lines.insert(rng.randrange(len(math_lines)), line)
    files = {"math_qa": _shards("math_qa", ".jsonl", math_lines, out, _write_jsonl)}

    # Long chains of thought of mixed quality (MATH layout: problem/solution with \boxed{}).
    long_rows = [T.long_cot(rng, index, n_long) for index in range(n_long)]
    cut = T.long_cot(rng, n_long, n_long)
    cut["solution"] = (
        cut["solution"][: len(cut["solution"]) // 2].rsplit(" ", 1)[0] + " and then the"
    )
    loop = T.long_cot(rng, n_long, n_long)
    loop["solution"] = "\n".join(["Wait, let me recompute that sum again."] * 40)
    long_rows += [cut, loop]
    injected["junk"] += 2
    files["math_long_cot"] = _shards(
        "math_long_cot", ".jsonl.gz", [_dump(r) for r in long_rows], out, _write_jsonl
    )

    # Code tasks (parquet, prompt/response), a few copied from HumanEval-like prompts.
    code = [T.code_task(rng) for _ in range(n_code)]
    for item in T.BENCHMARK_CODE:
        code.append({"prompt": item["prompt"], "response": item["solution"]})
        injected["bench"].append({"text": item["prompt"], "edit": "verbatim"})
    rng.shuffle(code)
    files["code"] = _shards("code", ".parquet", code, out, _write_parquet)

    # Chat-format science QA.
    chat = [T.science_chat(rng) for _ in range(n_chat)]
    chat_lines = [_dump(row) for row in chat]
    chat_lines.insert(rng.randrange(len(chat_lines) + 1), _dump({"messages": None}))
    files["chat"] = _shards("chat_science", ".jsonl", chat_lines, out, _write_jsonl)

    # Plain web-like text, with its own near duplicates (boilerplate pages).
    web = [T.web_page(rng) for _ in range(n_web)]
    for _ in range(max(2, n_web // 50)):
        original = rng.choice(web[:n_web])
        copy = {"text": T.light_edit(original["text"], rng, words=2)}
        web.append(copy)
        injected["near"].append([original["text"], copy["text"]])
    web += [{"text": "Subscribe now!"}, {"text": "\n".join(["Home | About | Contact"] * 12)}]
    injected["junk"] += 2
    rng.shuffle(web)
    files["web"] = _shards("web", ".jsonl.gz", [_dump(r) for r in web], out, _write_jsonl)

    bench = out / "benchmarks"
    _write_jsonl(bench / "mini_gsm8k.jsonl", [_dump(item) for item in T.BENCHMARK_MATH])
    _write_jsonl(bench / "mini_humaneval.jsonl", [_dump(item) for item in T.BENCHMARK_CODE])
    manifest = {
        "seed": seed,
        "records": len(math) + len(long_rows) + len(code) + len(chat) + len(web),
        "malformed_lines": bad + 1,
        "files": files,
        "injected": injected,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest

"""Cleaning, normalisation and decontamination as single steps."""

from __future__ import annotations

import json
from pathlib import Path

from datatrove.data import Document

from frontload.benchdata import open_text, shipped_path
from frontload.curate.clean import CleanFilter, is_truncated
from frontload.curate.decontam import DecontamFilter, build_index
from frontload.curate.recipe import CleanConfig, DecontamConfig, NormaliseConfig
from frontload.curate.steps import Normalise, normalise_text


def qa(prompt: str, response: str, **meta) -> Document:
    return Document(
        text=f"{prompt}\n\n{response}",
        id="x",
        metadata={"prompt": prompt, "response": response, "source": "s", **meta},
    )


def test_clean_reasons():
    check = CleanFilter(CleanConfig())
    assert check.filter(qa("What is 2+2?", "2 + 2 = 4.\n#### 4")) is True
    assert check.filter(qa("What is 2+2?", "")) == (False, "empty_response")
    assert check.filter(qa("", "4")) == (False, "empty_prompt")
    assert check.filter(qa("Add them.", "First we add the two and")) == (False, "truncated")
    assert check.filter(qa("Sum?", "\n".join(["I think it is 5."] * 10))) == (False, "repetition")
    loop = " ".join(["we add one more apple"] * 30)
    assert check.filter(qa("Apples?", loop + " so 30.")) == (False, "repetition")
    text = Document(text="tiny", id="y", metadata={"prompt": "", "response": ""})
    assert check.filter(text) == (False, "too_short")
    assert CleanFilter(CleanConfig(max_chars=10)).filter(qa("Q?", "A long answer.")) == (
        False,
        "too_long",
    )


def test_truncation_keeps_code_and_closed_answers():
    assert not is_truncated("def f(x):\n    return x + 1")
    assert not is_truncated("So the answer is \\boxed{12}.")
    assert is_truncated("So the answer is \\boxed{12")
    assert is_truncated("```python\nprint(1)\n")
    assert is_truncated("and the result then becomes...")


def test_normalise_sets_stable_id_and_cleans_whitespace():
    doc = qa("Ｗhat  is\u200b 1+1?\r\n\n\n\n", "2   \n")
    (out,) = Normalise(NormaliseConfig()).run([doc])
    assert out.metadata["prompt"] == "Ｗhat  is 1+1?"
    assert normalise_text("a\r\nb  \n\n\n\nc", NormaliseConfig()) == "a\nb\n\nc"
    twin = qa("Ｗhat  is 1+1?", "2")
    twin.text = out.text
    (again,) = Normalise(NormaliseConfig()).run([twin])
    assert again.id == out.id and len(out.id) == 24


QUESTION = (
    "Marisol bakes 48 muffins for the bake sale. She sells three quarters of them in the morning "
    "and gives 5 of the rest to her neighbours. How many muffins does Marisol have left?"
)


def make_index(tmp_path, **kw):
    bench = tmp_path / "bench.jsonl"
    rows = [{"question": QUESTION, "answer": "#### 7"}, {"question": "What is 17 times 3?"}]
    bench.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = DecontamConfig(benchmarks=[{"name": "mini", "path": str(bench)}], **kw)
    index = build_index(config)
    index.save(tmp_path / "index.npz")
    return DecontamFilter(tmp_path / "index.npz", config.action)


def test_decontam_flags_verbatim_and_edited_not_clean(tmp_path):
    step = make_index(tmp_path)
    edited = QUESTION.upper().replace("bake sale", "school fair").replace(".", " .")
    assert step.matches(f"Problem: {QUESTION}\nSolution: 7") == ["mini"]
    assert step.matches(edited) == ["mini"]
    assert step.matches("Marisol bakes bread every morning for her neighbours.") == []
    # an item shorter than short_n matches only as a whole prompt
    assert step.matches("Q", prompt="what is 17 times 3") == ["mini"]
    assert step.matches("what is 17 times 3 plus 4 more") == []
    doc = qa(QUESTION, "She has 7 left.")
    assert step.filter(doc) is True and doc.metadata["contaminated"] == ["mini"]


def test_decontam_drop_mode_names_the_benchmark(tmp_path):
    step = make_index(tmp_path, action="drop")
    assert step.filter(qa(QUESTION, "7")) == (False, "contaminated:mini")
    assert step.filter(qa("How many legs do 3 spiders have?", "24")) is True


def test_real_benchmarks_index(tmp_path):
    config = DecontamConfig(
        benchmarks=[
            {"path": "shipped:gsm8k_test"},
            {"path": "shipped:humaneval"},
            {"path": "shipped:mbpp"},
            {"name": "mmlu", "path": "shipped:mmlu_test"},
        ]
    )
    index = build_index(config)
    index.save(tmp_path / "i.npz")
    step = DecontamFilter(tmp_path / "i.npz", "flag")
    with open_text(Path(shipped_path("gsm8k_test"))) as handle:
        first = json.loads(handle.readline())
    assert step.matches(first["question"]) == ["gsm8k_test"]
    assert set(index.names) == {"gsm8k_test", "humaneval_HumanEval", "mbpp_sanitized_427", "mmlu"}
    assert step.matches("Kittens like to sleep in warm places during the afternoon.") == []

"""Token counting (exact, batched, which tokenizer) and answer verification against references."""

from __future__ import annotations

import pytest
from datatrove.data import Document
from tokenizers import Tokenizer

from frontload.curate.length import TokenCounter, ensure_tokenizer
from frontload.curate.length_step import length_steps
from frontload.curate.recipe import LengthConfig
from frontload.curate.verify import VerifyStep
from frontload.errors import InputError

from .conftest import make_records

SAMPLE = [r["text"] for r in make_records(300)] + [
    "Ünïcode 42 \\boxed{x}",
    "def f(x):\n    return x",
]


@pytest.fixture
def tokenizer_path(workspace):
    return ensure_tokenizer(LengthConfig(vocab_size=400), workspace, iter(SAMPLE))


def test_counts_are_exact_and_batched(tokenizer_path, workspace):
    assert tokenizer_path.parent == workspace.tokenizer_dir
    records = make_records(50)
    docs = [
        Document(text=r["text"], id=r["id"], metadata={"response": r["response"]}) for r in records
    ]
    (step,) = length_steps(LengthConfig(batch_size=8), workspace, tokenizer_path)
    out = list(step.run(iter(docs)))
    reference = Tokenizer.from_file(str(tokenizer_path))
    for doc, record in zip(out, records, strict=True):
        expected_total = len(reference.encode(record["text"], add_special_tokens=False).ids)
        expected_answer = len(reference.encode(record["response"], add_special_tokens=False).ids)
        assert doc.metadata["total_tokens"] == expected_total
        assert doc.metadata["answer_tokens"] == expected_answer
    assert any(d.metadata["answer_tokens"] == 0 for d in out)  # plain-text records
    assert step.stats["tokens"].total == sum(d.metadata["total_tokens"] for d in out)


def test_tokenizer_choice_order(tokenizer_path, workspace, tmp_path):
    assert (
        ensure_tokenizer(None, workspace, iter([])) == tokenizer_path
    )  # workspace one, no training
    chosen = ensure_tokenizer(LengthConfig(tokenizer=tokenizer_path.parent), workspace, iter([]))
    assert chosen == tokenizer_path
    with pytest.raises(InputError, match="no tokenizer.json"):
        ensure_tokenizer(LengthConfig(tokenizer=tmp_path / "nowhere"), workspace, iter([]))
    broken = tmp_path / "tokenizer.json"
    broken.write_text("{not json")
    with pytest.raises(InputError, match="cannot load"):
        TokenCounter(broken)


def verify(records: list[dict]) -> list:
    docs = [Document(text="", id=str(i), metadata=r) for i, r in enumerate(records)]
    return [d.metadata["verified"] for d in VerifyStep(workers=1, batch_size=3).run(iter(docs))]


def test_verification_against_references():
    records = [
        {"response": "so 3 + 4 = 7. The answer is \\boxed{7}", "reference": "7"},
        {"response": "I think it is \\boxed{8}", "reference": "7"},
        {"response": "no reference here \\boxed{1}", "reference": None},
        {"response": "half of it: \\boxed{\\frac{1}{2}}", "reference": "0.5"},
        {
            "response": "Natalia sold 48/2 = 24 clips.\n#### 72",
            "reference": "He sold 48+24 = 72\n#### 72",
        },
        {"response": "I cannot tell.", "reference": "3"},
        {"response": "", "reference": "3"},
    ]
    assert verify(records) == [True, False, None, True, True, False, None]

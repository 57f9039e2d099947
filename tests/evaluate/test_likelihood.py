"""Likelihood metrics: bits per byte of a known string under models whose probabilities are known
exactly, the same numbers batched or one by one, and the metrics in samples.parquet and summaries."""

import json
import math
from types import SimpleNamespace

import pyarrow.parquet as pq
import pytest

torch = pytest.importorskip("torch")

from frontload.evaluate import likelihood, metrics  # noqa: E402
from frontload.evaluate.generation import score_segments  # noqa: E402
from frontload.evaluate.runner import EvalSettings, run_evaluation  # noqa: E402


class CharTokenizer:
    """One token per character (ids = code points mod 96), so token counts and bytes are known."""

    pad_token_id = 0
    eos_token_id = 1

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [ord(c) % 96 for c in text]}


class TableModel(torch.nn.Module):
    """logits[t] = table[token t]: a bigram model whose next-token probabilities we can write."""

    def __init__(self, table):
        super().__init__()
        self.table = table
        self.config = SimpleNamespace(max_position_embeddings=512)
        self.device = torch.device("cpu")

    def forward(self, input_ids, attention_mask=None):
        return SimpleNamespace(logits=self.table[input_ids])


class LastLogitsModel(TableModel):
    """The same model, but it can return logits for the last positions only (as the hybrid and
    transformers' models can): the scores must not change."""

    def forward(self, input_ids, attention_mask=None, logits_to_keep=0):
        logits = self.table[input_ids]
        return SimpleNamespace(logits=logits[:, -logits_to_keep:] if logits_to_keep else logits)


VOCAB = 96


def test_uniform_model_costs_log2_vocab_bits_per_byte():
    model = TableModel(torch.zeros(VOCAB, VOCAB))
    text = "The answer is 42."
    [[(logprob, tokens)]] = score_segments(model, CharTokenizer(), [["Q: 6*7?", text]])
    assert tokens == len(text)
    assert logprob == pytest.approx(-len(text) * math.log(VOCAB))
    # ASCII: one token per byte, each costing log2(96) bits
    assert metrics.bits_per_byte(logprob, text) == pytest.approx(math.log2(VOCAB))


def test_bigram_model_matches_hand_computation_and_batching():
    generator = torch.Generator().manual_seed(0)
    table = torch.randn(VOCAB, VOCAB, generator=generator)
    model = TableModel(table)
    tok = CharTokenizer()
    context, body, answer, tail = "Q: 1+1?\nA:", " one plus one is ", "2", "."
    text = body + answer + tail

    # by hand: every character of the solution given the previous character
    full = tok(context + text)["input_ids"]
    logprobs = torch.log_softmax(table, dim=-1)
    start = len(context)
    expected = [float(logprobs[full[i - 1], full[i]]) for i in range(start, len(full))]
    expected_bpb = -sum(expected) / math.log(2) / len(text.encode())
    answer_at = start + len(body)
    expected_answer = float(logprobs[full[answer_at - 1], full[answer_at]])

    rows = [[context, body, answer, tail], ["x", "short"], ["a much longer context here", "yz"]]
    together = score_segments(model, tok, rows, batch_size=3)
    alone = [score_segments(model, tok, [row], batch_size=1)[0] for row in rows]
    for batched, single in zip(together, alone, strict=True):
        assert [lp for lp, _ in batched] == pytest.approx([lp for lp, _ in single], abs=1e-5)
    kept = score_segments(LastLogitsModel(table), tok, rows, batch_size=3)
    for full, last in zip(together, kept, strict=True):
        assert [lp for lp, _ in full] == pytest.approx([lp for lp, _ in last], abs=1e-5)
    segments = together[0]
    assert [n for _, n in segments] == [len(body), len(answer), len(tail)]
    total = sum(lp for lp, _ in segments)
    assert metrics.bits_per_byte(total, text) == pytest.approx(expected_bpb, rel=1e-6)
    assert segments[1][0] == pytest.approx(expected_answer, rel=1e-6)


def test_choice_probability_and_seed_statistics():
    assert metrics.choice_probability([0.0, 0.0, 0.0, 0.0], 2) == pytest.approx(0.25)
    assert metrics.choice_probability([math.log(3), 0.0], 0) == pytest.approx(0.75)
    mean, se = metrics.mean_and_se([1.0, 2.0, 3.0])
    assert mean == 2.0 and se == pytest.approx(1 / math.sqrt(3))
    assert metrics.mean_and_se([5.0]) == (5.0, None)
    # arms 10 apart, seeds 1 apart: the signal dwarfs the noise
    snr = metrics.signal_to_noise({"a": [1.0, 2.0], "b": [11.0, 12.0]})
    assert snr == pytest.approx(math.sqrt(50) / math.sqrt(0.5))
    assert metrics.signal_to_noise({"a": [1.0, 2.0]}) is None


def test_gold_solutions_in_the_tasks_own_format():
    from frontload.evaluate.tasks import parse_tasks

    gsm8k, math500 = parse_tasks("gsm8k,math500")
    sample = SimpleNamespace(reference="7", id="0")
    record = {"question": "q", "answer": "3+4=<<3+4=7>>7\n#### 7"}
    base = likelihood.gold_solution(gsm8k, sample, record, "base")
    # GSM8K's calculator annotations are not scored: the model is never asked to write them
    assert base.text == " 3+4=7 The answer is 7." and base.answer == "7"
    chat = likelihood.gold_solution(gsm8k, sample, record, "chat")
    assert chat.answer == "7" and "\\boxed{" in chat.body and "<<" not in chat.body
    boxed = likelihood.gold_solution(
        math500, sample, {"solution": "So $\\boxed{\\frac{1}{2}}$ done."}, "base"
    )
    assert boxed.answer == "\\frac{1}{2}" and boxed.tail == "}$ done."
    (amc23,) = parse_tasks("amc23")
    only_answer = likelihood.gold_solution(amc23, sample, {"problem": "p", "answer": 7.0}, "base")
    assert only_answer.answer == "7" and "final answer is $" in only_answer.body


def test_runner_stores_metrics_per_sample_and_per_task(tiny_model, mini_data, tmp_path):
    out = tmp_path / "run"
    settings = EvalSettings(
        model=str(tiny_model),
        tasks=["gsm8k", "math500", "mmlu", "mbpp"],
        max_new_tokens=4,
        batch_size=2,
        limit=2,
        data_dir=str(mini_data),
    )
    rows = {r["task"]: r for r in run_evaluation(settings, out)}
    table = pq.read_table(out / "samples.parquet").to_pylist()
    for task in ("gsm8k", "math500", "mbpp"):
        values = [r["bpb"] for r in table if r["task"] == task]
        assert values and all(v is not None and v > 0 for v in values)
        assert rows[task]["bpb"] == pytest.approx(sum(values) / len(values))
    gsm = [r for r in table if r["task"] == "gsm8k"]
    assert all(r["answer_logprob"] < 0 for r in gsm)
    mmlu = [r for r in table if r["task"] == "mmlu"]
    assert all(0 < r["choice_prob"] < 1 for r in mmlu)
    assert rows["mmlu"]["choice_prob"] == pytest.approx(
        sum(r["choice_prob"] for r in mmlu) / len(mmlu)
    )
    assert rows["mbpp"]["answer_logprob"] is None and rows["gsm8k"]["choice_prob"] is None
    math_bpb = (rows["gsm8k"]["bpb"] + rows["math500"]["bpb"]) / 2
    assert rows["gsm8k"]["category_means"]["bpb"] == pytest.approx(math_bpb)
    # an untrained model is close to uniform over its vocabulary: bpb near log2(V)/bytes-per-token
    assert rows["gsm8k"]["bpb"] < 2 * math.log2(320)


def test_few_shot_examples_carry_no_calculator_annotations(tmp_path):
    from frontload.evaluate.tasks import parse_tasks
    from frontload.evaluate.tasks.sources import BenchFiles

    (gsm8k,) = parse_tasks("gsm8k")
    train = [
        {"question": f"q{i}", "answer": f"2*{i}=<<2*{i}={2 * i}>>{2 * i}\n#### {2 * i}"}
        for i in range(8)
    ]
    (tmp_path / "gsm8k_train.jsonl").write_text("\n".join(json.dumps(r) for r in train))
    test = [{"question": "What is 2*3?", "answer": "2*3=<<2*3=6>>6\n#### 6"}]
    (sample,) = gsm8k.build(test, "base", 2, BenchFiles.of(tmp_path))
    assert "The answer is" in sample.prompt and "<<" not in sample.prompt


def test_problems_drawn_at_random_are_fixed_by_the_seed():
    from frontload.evaluate.runner import pick_problems

    records = [{"i": i} for i in range(100)]
    first = pick_problems(records, 10, None)
    drawn = pick_problems(records, 10, 7)
    assert [r["i"] for r in first] == list(range(10))
    assert drawn == pick_problems(records, 10, 7) and drawn != first
    assert [r["i"] for r in drawn] == sorted(r["i"] for r in drawn)
    assert pick_problems(records, 10, 8) != drawn
    assert pick_problems(records, 500, 7) == records

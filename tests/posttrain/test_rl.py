"""GRPO on a toy arithmetic task raises the reward: the SFT teacher is noisy (one answer in three
is right), so the warm-started model samples right and wrong answers, and the math reward (the
evaluation's grader) has to move it towards the right one."""

from __future__ import annotations

import json
import random

import torch

from frontload.train.posttrain.common import load_model_and_tokenizer
from frontload.train.posttrain.recipe import RLRecipe, SFTRecipe
from frontload.train.posttrain.rl import rl
from frontload.train.posttrain.sft import sft

from .conftest import build_model, build_tokenizer, write_corpus

PROBLEMS = [(1, 1), (0, 2), (2, 0)]  # all sum to 2: the policy can learn it without reading digits


def noisy_sft_rows(n: int, seed: int) -> list[tuple[str, str, str]]:
    """Right answer a third of the time, off by one otherwise."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        a, b = rng.choice(PROBLEMS)
        answer = a + b + rng.choice([-1, 0, 1])
        rows.append((f"What is {a}+{b}?", str(answer), str(a + b)))
    return rows


def sampled_accuracy(workspace, model_dir: str, samples: int = 32) -> float:
    """Share of sampled answers (temperature 1) that are right, over the toy problems."""
    model, tokenizer = load_model_and_tokenizer(workspace, model_dir, None)
    model.eval()
    torch.manual_seed(0)
    right = 0
    for a, b in PROBLEMS:
        chat = [{"role": "user", "content": f"What is {a}+{b}?"}]
        text = tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
        ids = tokenizer(text, return_tensors="pt").input_ids.repeat(samples, 1)
        with torch.no_grad():
            out = model.generate(
                ids,
                do_sample=True,
                temperature=1.0,
                max_new_tokens=4,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )
        answers = tokenizer.batch_decode(out[:, ids.shape[1] :], skip_special_tokens=True)
        right += sum(answer.strip() == str(a + b) for answer in answers)
    return right / (samples * len(PROBLEMS))


def test_grpo_raises_the_reward_on_toy_arithmetic(workspace):
    rows = noisy_sft_rows(300, seed=0)
    write_corpus(workspace.corpus_dir("toy"), rows)
    tokenizer = build_tokenizer(workspace.tokenizer_dir, [f"{p} {r}" for p, r, _ in rows] * 3)
    build_model(workspace.runs_dir / "base" / "hf", len(tokenizer))
    warm = SFTRecipe(
        name="warm",
        model="runs/base/hf",
        corpora=[{"name": "toy"}],
        eval_fraction=0.0,
        lr=1e-2,
        global_batch_size=8,
        micro_batch_size=8,
        max_length=128,
        max_steps=30,
    )
    sft(warm, workspace)
    before = sampled_accuracy(workspace, "runs/warm/hf")
    assert 0.1 < before < 0.8  # the warm start gives the reward something to work with
    recipe = RLRecipe(
        name="grpo",
        model="runs/warm/hf",
        prompts=["toy"],
        lr=3e-3,  # the study's 1e-6 moves a model this small far too slowly for a unit test
        num_generations=8,
        prompts_per_step=4,
        micro_batch_size=32,
        max_completion_length=4,
        max_steps=20,
        log_samples=2,
    )
    result = rl(recipe, workspace)
    after = sampled_accuracy(workspace, "runs/grpo/hf")
    assert after > before + 0.15, (before, after)
    assert result.steps == 20 and result.reward_errors == 0
    rows = [json.loads(x) for x in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert any("reward" in row for row in rows)
    samples = (result.run_dir / "samples.jsonl").read_text().splitlines()
    assert samples and "completion" in json.loads(samples[0])

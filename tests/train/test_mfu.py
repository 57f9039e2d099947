"""MFU you can trust: the FLOP count against a hand count for the 1b preset, document lengths from
the loader, and the tokens/s and MFU clock that runs over training steps only."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

from frontload.data.loader import DeviceLoader, document_bounds
from frontload.model import preset
from frontload.train.metrics import FlopCounter


def test_flops_match_a_hand_count_for_the_1b_preset() -> None:
    d, vocab, ffn = 2048, 32768, 8192
    heads, head_dim, state, groups, conv_k, chunk = 64, 64, 128, 8, 4, 128
    q_heads, kv_heads, attn_dim = 16, 8, 128
    inner = heads * head_dim  # 4096
    conv = inner + 2 * groups * state  # x, B, C through the conv: 6144
    mamba = (
        d * (2 * inner + 2 * groups * state + heads)  # in_proj: z, xBC, dt
        + conv * conv_k
        + conv  # depthwise conv weight and bias
        + 3 * heads  # A_log, dt_bias, D
        + inner  # gated norm
        + inner * d  # out_proj
        + d  # block norm
    )
    attention = d * q_heads * attn_dim + 2 * d * kv_heads * attn_dim + q_heads * attn_dim * d + d
    mlp = 2 * d * ffn + d
    pattern = "M-M-M*-M-M-M*-M-M-M*-M-M-M-"
    n_mamba, n_attn, n_mlp = pattern.count("M"), pattern.count("*"), pattern.count("-")
    non_embedding = n_mamba * mamba + n_attn * attention + n_mlp * mlp + d + vocab * d  # + head
    # Two 8192-token rows: one document, and two documents of 3000 and 5192 tokens.
    seq_idx = np.zeros((2, 8192), dtype=np.int32)
    seq_idx[1, 3000:] = 1
    _, longest, pairs = document_bounds(seq_idx)
    assert longest == 8192 and pairs == 8192 * 8193 + 3000 * 3001 + 5192 * 5193
    tokens = 2 * 8192
    expected = (
        6 * non_embedding * tokens
        + 6 * n_attn * q_heads * attn_dim * pairs  # causal QK^T and AV, fwd + bwd
        + 3
        * n_mamba
        * (4 * heads * head_dim * state + heads * chunk * head_dim + groups * chunk * state)
        * tokens
    )
    counter = FlopCounter.for_config(preset("1b"), 8192)
    assert counter.step_flops(tokens, pairs) == pytest.approx(expected, rel=1e-12)
    # The embedding table (a lookup) is not in the 6N term: counting it would add 7.8% here.
    assert counter.dense_per_token == 6 * non_embedding


def test_loader_bounds_match_the_model_and_prefetch_keeps_the_resume_point() -> None:
    from frontload.model.attention import varlen_bounds

    rng = np.random.default_rng(0)
    seq_idx = np.sort(rng.integers(0, 4, size=(3, 50)), axis=1).astype(np.int32)
    cu, longest, _ = document_bounds(seq_idx)
    cu_model, longest_model = varlen_bounds(torch.from_numpy(seq_idx))
    assert cu.tolist() == cu_model.tolist() and longest == longest_model

    class Source:
        phases = [type("Phase", (), {"name": "only"})()]
        index = 0

        def __init__(self) -> None:
            self.served = 0

        def batch(self, step: int, rows: int) -> dict:
            self.served += 1
            ids = np.full((rows, 8), self.served, dtype=np.int64)
            return {"input_ids": ids, "labels": ids, "seq_idx": np.zeros((rows, 8), np.int32)}

        def state_dict(self) -> dict:
            return {"served": self.served}

    loader = DeviceLoader(Source(), rows=2, accum=3, device=torch.device("cpu"))
    first = loader.get(0)
    assert [int(m["input_ids"][0, 0]) for m in first.micro] == [1, 2, 3]
    assert first.counts == [14, 14, 14] and first.tokens == 48 and first.phase == "only"
    loader.prefetch(1)
    assert loader.state_dict() == {"served": 3}  # a checkpoint now resumes at step 1, not 2
    second = loader.get(1)
    assert [int(m["input_ids"][0, 0]) for m in second.micro] == [4, 5, 6]
    assert loader.state_dict() == {"served": 6}
    assert second.micro[0]["cu_seqlens"].tolist() == [0, 8, 16]


@pytest.mark.timeout(600)
def test_run_records_kernels_and_times_training_steps_only(token_workspace, read_rows, monkeypatch):
    from tests.train.test_pretrain import tiny_recipe

    from frontload.train import pretrain as trainer

    def slow_eval(*args, **kwargs):
        time.sleep(1.5)
        return {"val_loss_slow": 1.0}

    monkeypatch.setattr(trainer, "evaluate", slow_eval)
    recipe = tiny_recipe(total_tokens=512 * 4, name="clock")
    recipe.log.interval_steps = 1
    recipe.log.peak_tflops = 1.0
    recipe.eval.interval_steps = 1
    run = trainer.pretrain(recipe, token_workspace)
    rows = read_rows(run)
    start = [row for row in rows if row["kind"] == "start"]
    assert len(start) == 1 and start[0]["kernel_mode"] == "auto"
    assert start[0]["kernel_scan"].endswith("chunked SSD")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["kernels"]["scan"] == start[0]["kernel_scan"] and summary["steps"] == 4
    train = [row for row in rows if row["kind"] == "train"]
    assert len(train) == 4 and len([row for row in rows if row["kind"] == "eval"]) == 4
    # Each evaluation sleeps 1.5 s between two training steps; none of it is training time.
    assert all(0 < row["train_seconds"] < 1.5 for row in train[1:])
    assert all(row["mfu"] > 0 for row in train)


def test_kernels_require_stops_at_start_naming_what_is_missing(token_workspace, tmp_path) -> None:
    from tests.train.test_pretrain import tiny_recipe
    from typer.testing import CliRunner

    from frontload.cli import app
    from frontload.config import dump_yaml

    recipe = tiny_recipe(name="strict", kernels="require")
    path = tmp_path / "strict.yaml"
    dump_yaml(recipe, path)
    result = CliRunner().invoke(
        app, ["train", "pretrain", str(path), "--workspace", str(token_workspace.root)]
    )
    assert result.exit_code != 0
    assert "kernels: require, but missing: cuda" in str(result.exception)
    assert not (token_workspace.runs_dir / "strict").exists()  # nothing started

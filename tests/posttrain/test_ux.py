"""`fl train sft` output as the user sees it: a progress bar with loss, no library noise."""

from __future__ import annotations

import yaml
from tests.fl_cli import run_fl

NOISE = (
    "Writing model shards",
    "Loading weights",
    "PAD/BOS/EOS",
    "FutureWarning",
    "UserWarning",
    "Traceback",
)


def test_sft_shows_progress_and_keeps_library_noise_in_the_log(
    toy_workspace, tmp_path, capsys, monkeypatch
):
    recipe = {
        "name": "sft_ux",
        "model": "runs/base/hf",
        "corpora": [{"name": "dshq", "max_records": 64}],
        "eval_fraction": 0.1,
        "global_batch_size": 4,
        "micro_batch_size": 4,
        "max_length": 128,
        "max_steps": 4,
        "logging_steps": 2,
        "save_steps": 100,
    }
    path = tmp_path / "sft.yaml"
    path.write_text(yaml.safe_dump(recipe))
    code, output = run_fl(
        ["train", "sft", str(path), "-w", str(toy_workspace.root)], capsys, monkeypatch
    )
    assert code == 0, output
    assert "sft sft_ux" in output and "4/4" in output, output
    assert "loss " in output, output
    for noise in NOISE:
        assert noise not in output, (noise, output)
    log = toy_workspace.runs_dir / "sft_ux" / "train.log"
    assert log.is_file() and "PAD/BOS/EOS" in log.read_text()  # captured, not lost


def test_grpo_bar_shows_reward_and_tokens_per_second(capsys):
    """The callback GRPO uses, driven with the log dicts TRL's GRPOTrainer writes."""
    from types import SimpleNamespace

    from frontload.train.progress import progress_callback

    callback = progress_callback("rl", "grpo_ux", "reward")
    state = SimpleNamespace(is_world_process_zero=True, max_steps=3, global_step=0)
    callback.on_train_begin(None, state, None)
    for step, tokens in ((1, 100), (2, 300), (3, 500)):
        state.global_step = step
        callback.on_step_end(None, state, None)
        callback.on_log(None, state, None, logs={"reward": 0.25 * step, "num_tokens": tokens})
    callback.on_train_end(None, state, None)
    err = capsys.readouterr().err
    assert "rl grpo_ux" in err and "3/3" in err and "reward 0.7500" in err and "tok/s" in err

"""Stage skipping by content hash: up-to-date stages are skipped, changed ones redone, interrupted
ones resumed; bad pipeline files fail before any work."""

from __future__ import annotations

import pytest

from frontload.errors import ConfigError
from frontload.study.pipeline import StageState, digest, files_digest, run_pipeline


def test_stage_runs_once_then_skips(tmp_path):
    calls = []
    out = tmp_path / "out"

    def work(resume: bool) -> None:
        calls.append(resume)
        out.mkdir()

    state = StageState(tmp_path / "state")
    state.run("stage", "k1", work, [out])
    again = StageState(tmp_path / "state")  # a new process reads the same state file
    again.run("stage", "k1", work, [out])
    assert calls == [False] and again.skipped == ["stage"]


def test_changed_key_wipes_outputs_and_reruns(tmp_path):
    out = tmp_path / "out"
    seen = []

    def work(resume: bool) -> None:
        seen.append(sorted(p.name for p in out.glob("*")) if out.exists() else None)
        out.mkdir(exist_ok=True)
        (out / f"file{len(seen)}").write_text("x")

    state = StageState(tmp_path / "state")
    state.run("stage", "k1", work, [out])
    state.run("stage", "k2", work, [out])
    assert seen == [None, None]  # the stale output was removed before the rerun
    assert sorted(p.name for p in out.glob("*")) == ["file2"]


def test_interrupted_stage_resumes_with_its_outputs(tmp_path):
    out = tmp_path / "out"

    def crash(resume: bool) -> None:
        out.mkdir()
        raise KeyboardInterrupt

    state = StageState(tmp_path / "state")
    with pytest.raises(KeyboardInterrupt):
        state.run("stage", "k1", crash, [out])
    resumed = []
    StageState(tmp_path / "state").run("stage", "k1", lambda r: resumed.append(r), [out])
    assert resumed == [True] and out.is_dir()


def test_missing_output_reruns_even_with_same_key(tmp_path):
    out = tmp_path / "out"
    calls = []
    state = StageState(tmp_path / "state")
    state.run("stage", "k", lambda r: (calls.append(r), out.mkdir()), [out])
    out.rmdir()
    state.run("stage", "k", lambda r: (calls.append(r), out.mkdir()), [out])
    assert len(calls) == 2


def test_hashes_follow_content(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("one")
    b.write_text("two")
    first = files_digest([a, b])
    b.write_text("three")
    assert files_digest([a, b]) != first
    assert digest({"x": 1, "y": 2}) == digest({"y": 2, "x": 1})


def test_rl_arm_must_name_a_pipeline_arm(tmp_path, workspace):
    path = tmp_path / "study.yaml"
    path.write_text(
        "name: s\ncurate: curate.yaml\n"
        "arms: [{name: M_base, pt_reasoning: none, pretrain: p.yaml}]\n"
        "sft: [{name: SHQ, recipe: s.yaml}]\n"
        "rl: {recipe: r.yaml, arms: [M_LMQ], sft: SHQ}\n"
    )
    with pytest.raises(ConfigError, match="unknown arms"):
        run_pipeline(path, workspace)


def test_unknown_key_in_pipeline_is_an_error(tmp_path, workspace):
    path = tmp_path / "study.yaml"
    path.write_text("name: s\ncurate: c.yaml\narms: []\nsfft: []\n")
    with pytest.raises(ConfigError, match="sfft"):
        run_pipeline(path, workspace)


def test_seeds_name_each_run_and_set_the_recipes_seed(tmp_path, workspace):
    from frontload.study.config import PipelineConfig
    from frontload.study.pipeline import Study

    config = PipelineConfig(
        name="nano-study",
        curate="c.yaml",
        seeds=[0, 1],
        arms=[{"name": "M_base", "pt_reasoning": "none", "pretrain": "p.yaml"}],
    )
    study = Study(config, tmp_path, workspace)
    study.seed = 1
    assert study.run_name("M_base", "sft", "2xLDQ") == "nano_study_m_base_sft_2xldq_s1"
    assert study.stage_name("pretrain", "M_base") == "pretrain/M_base/seed1"
    assert study.seeded({"total_tokens": 10}) == {"total_tokens": 10, "seed": 1}
    single = Study(config.model_copy(update={"seeds": [0]}), tmp_path, workspace)
    single.seed = 0
    assert single.run_name("M_base") == "nano_study_m_base"  # one seed: the plain names


def test_repeated_seeds_and_sft_arms_naming_strangers_are_errors(tmp_path, workspace):
    path = tmp_path / "study.yaml"
    arms = "arms: [{name: M_base, pt_reasoning: none, pretrain: p.yaml}]\n"
    path.write_text(f"name: s\ncurate: c.yaml\nseeds: [1, 1]\n{arms}")
    with pytest.raises(ConfigError, match="seeds repeat"):
        run_pipeline(path, workspace)
    path.write_text(
        f"name: s\ncurate: c.yaml\n{arms}"
        "sft: [{name: LDQ, recipe: s.yaml, scale: 2, arms: [M_LDQ]}]\n"
    )
    with pytest.raises(ConfigError, match="2xLDQ: arms \\['M_LDQ'\\]"):
        run_pipeline(path, workspace)


def test_task_limits_name_evaluated_tasks():
    from pydantic import ValidationError

    from frontload.study.config import EvalStage

    stage = EvalStage(chat_tasks=["gsm8k", "math500"], limit=8, task_limits={"math500": 64})
    assert stage.task_limits == {"math500": 64}
    with pytest.raises(ValidationError, match="no model is evaluated on"):
        EvalStage(chat_tasks=["gsm8k"], task_limits={"mmlu": 64})

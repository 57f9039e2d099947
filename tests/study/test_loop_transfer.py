"""The nano loop and its scale transfer end to end, with stand-in trainers and a metric that is a
fixed function of the allocation's shares (tests/study/standins.py): equal pretraining allocations
share a run per seed, the study's arms give the four findings, verification trains on fresh seeds
only and judges with the paired rule, and the transfer retrains the loop's arms at 4x the tokens
and reports rank agreement and the findings at both scales."""

from __future__ import annotations

import json

import pytest
import yaml
from tests.allocate.conftest import _record, write_corpus
from tests.study.standins import RECIPES, install, write_loop
from typer.testing import CliRunner

from frontload.allocate.pools import load_pools
from frontload.cli import app
from frontload.errors import ConfigError
from frontload.study.sweep import run_loop
from frontload.study.transfer import run_transfer
from frontload.study.transfer_report import format_transfer, rank_agreement, transfer
from frontload.workspace import Workspace

SWEEP_SEEDS = [0, 1, 2]


def nano_workspace(root) -> Workspace:
    """The allocation tests' corpora, plus the files a transfer copies (tokenizer, token shards)."""
    ws = Workspace.resolve(root).ensure()
    ldq = [_record(i, "ldq") for i in range(60)]
    shq = [_record(i, "shq") for i in range(8)]
    general = [_record(i, "web") | {"tags": ["general"]} for i in range(20)]
    for name, records in (("dldq", ldq), ("dshq", shq), ("dlmq", ldq + shq), ("general", general)):
        write_corpus(ws.root, name, records)
        (ws.tokens_dir / name).mkdir(parents=True)
        (ws.tokens_dir / name / "manifest.json").write_text(json.dumps({"name": name}))
    write_corpus(ws.root, "dalf", [r for r in ldq if r["answer_tokens"] > 4096])
    ws.tokenizer_dir.mkdir(parents=True, exist_ok=True)
    (ws.tokenizer_dir / "tokenizer.json").write_text("{}")
    return ws


def write_transfer(folder, factor: int = 4):
    folder.mkdir(parents=True)
    pretrain = yaml.safe_load((RECIPES / "nano" / "loop_pretrain.yaml").read_text())
    pretrain["total_tokens"] = 204800 * factor
    (folder / "pretrain.yaml").write_text(yaml.safe_dump(pretrain))
    (folder / "sft.yaml").write_text((RECIPES / "nano" / "loop_sft.yaml").read_text())
    spec = {"name": "vf-micro", "source": "../nano/loop.yaml", "seeds": [0, 1, 2]}
    spec |= {"pretrain": "pretrain.yaml", "sft": "sft.yaml"}
    (folder / "transfer.yaml").write_text(yaml.safe_dump(spec))
    return folder / "transfer.yaml"


def test_loop_then_transfer(tmp_path, monkeypatch):
    calls: list = []
    install(monkeypatch, calls)
    nano = nano_workspace(tmp_path / "nano-ws")
    loop = run_loop(write_loop(tmp_path / "recipes" / "nano", SWEEP_SEEDS), nano, force=True)
    # the sweep: 11 points, the study's 8 arms on 4 pretraining allocations, shared per seed
    sweep_pt = {n for kind, n, seed in calls if kind == "pretrain" and seed in SWEEP_SEEDS}
    assert len(sweep_pt) <= (11 - 4) * len(SWEEP_SEEDS)
    assert len(calls) == len({c[1] for c in calls})  # nothing trained twice
    # verification: fresh seeds only, every arm, every comparison with the paired rule
    verified = {seed for kind, n, seed in calls if n.startswith("vf_plan")}
    assert verified == {1000, 1001, 1002} and not verified & set(SWEEP_SEEDS)
    result = json.loads((loop.folder / "verify.json").read_text())
    arms = {a["arm"]: a for a in result["arms"]}
    assert set(arms) == {"plan", "proportional", "unimax", "study_share", "best_observed"}
    assert arms["best_observed"]["in_sweep"]  # a design point: flagged
    assert all(len(a["realized"]) == 3 and len(a["runs"]) == 3 for a in result["arms"])
    assert {c["seeds"] for c in result["comparisons"]} == {3}
    # the findings: base models of the study's 4 pretraining arms and the doubled SFT arm
    models = json.loads((loop.folder / "models.json").read_text())
    bases = {m["model"] for m in models if m["stage"] == "base"}
    assert bases == {"M_base", "M_LDQ", "M_SHQ", "M_LMQ"}
    assert {m["seed"] for m in models if m["sft_scale"] == 2} == set(SWEEP_SEEDS)
    report = loop.summary()
    assert "SFT phase" in report and "plan vs" in report and "findings on" in report
    assert "beyond" not in report
    fitted = (loop.folder / "experiments.csv").read_text()
    assert "-2x" not in fitted and "best_observed" not in fitted  # the fit sees the sweep only
    assert load_pools(loop.folder / "experiments.pools.yaml").corpora  # fits from the CSV alone

    # the transfer: the loop's arms at 4x the tokens, on a copy of the loop's data
    micro = Workspace.resolve(tmp_path / "micro-ws").ensure()
    path = write_transfer(tmp_path / "recipes" / "micro")
    with pytest.raises(ConfigError, match="--source NANO_WS"):
        run_transfer(path, micro, None)
    calls.clear()
    done = run_transfer(path, micro, nano)
    assert (micro.tokens_dir / "dldq" / "manifest.json").is_file()
    page = done.html.read_text()  # `fl report html` shows the transfer and the findings kept
    assert "transfer" in page and "decision accuracy" in page and "kept" in page
    trained = {(n, seed) for kind, n, seed in calls if kind == "sft"}
    assert len(trained) == 11 * 3  # 8 study arms + T6 + plan + best observed, 3 seeds
    data = transfer(nano, micro)
    ranks = data["ranks"]
    assert len(ranks["arms"]) == 11 and data["factor"] == pytest.approx(4.0)
    # the stand-in metric is scale-free: the two scales must rank the arms alike
    assert ranks["spearman"] > 0.9 and ranks["decision_accuracy"] > 0.9
    low, high = ranks["decision_accuracy_interval"]
    assert low <= ranks["decision_accuracy"] <= high
    assert [f["id"] for f in data["findings"]] == [1, 2, 3, 4]
    for f in data["findings"]:
        assert f["kept"] == (f["nano"]["verdict"] == f["micro"]["verdict"])
    saved = json.loads((micro.reports_dir / "transfer.json").read_text())
    assert saved["ranks"]["spearman"] == ranks["spearman"]
    beside = micro.root / "pipeline" / "vf-micro" / "transfer.json"  # where `fl report html` looks
    assert json.loads(beside.read_text()) == saved
    assert "decision accuracy" in format_transfer(data)
    result = CliRunner().invoke(app, ["report", "transfer", str(nano.root), str(micro.root)])
    assert result.exit_code == 0, result.output
    assert "Spearman" in result.output and "findings" in result.output


def test_rank_agreement_can_go_against_the_decision():
    nano = {f"a{i}": {0: float(i), 1: i + 0.01, 2: i - 0.01} for i in range(6)}
    same = {k: {s: 2 * v for s, v in seeds.items()} for k, seeds in nano.items()}
    reversed_ = {k: {s: -v for s, v in seeds.items()} for k, seeds in nano.items()}
    agree = rank_agreement(nano, same)
    assert agree["spearman"] == pytest.approx(1.0) and agree["decision_accuracy"] == 1.0
    against = rank_agreement(nano, reversed_)
    assert against["spearman"] == pytest.approx(-1.0) and against["decision_accuracy"] == 0.0
    assert against["decision_accuracy_interval"][1] < 0.5
    with pytest.raises(Exception, match="at least 3 shared arms"):
        rank_agreement(nano, {"a0": {0: 1.0}, "zz": {0: 2.0}})

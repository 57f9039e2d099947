"""Checkpoints outside frontload: runs/*/hf and `fl model export` folders load in stock transformers
(a fresh process that never imports frontload, no trust_remote_code) with the same logits, and carry
the tokenizer files and chat template."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch
from typer.testing import CliRunner

from frontload.model import HybridForCausalLM, preset

STOCK = """
import json, sys, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
folder, ids = sys.argv[1], json.loads(sys.argv[2])
model = AutoModelForCausalLM.from_pretrained(folder).eval()
tokenizer = AutoTokenizer.from_pretrained(folder)
with torch.no_grad():
    logits = model(torch.tensor(ids)).logits
print(json.dumps({
    "frontload_imported": any(name.startswith("frontload") for name in sys.modules),
    "class": type(model).__name__,
    "logits": logits.tolist(),
    "chat": tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    ),
}))
"""


def _model() -> HybridForCausalLM:
    torch.manual_seed(0)
    model = HybridForCausalLM(preset("tiny")).eval()
    with torch.no_grad():  # no parameter may hide behind its init value
        for name, param in model.named_parameters():
            if "norm" in name or name.endswith((".D", "conv1d.bias")):
                param.add_(torch.randn_like(param) * 0.2)
    return model


def _tokenizer(folder: Path):
    from frontload.data.tokenizer import load_tokenizer, train_tokenizer

    train_tokenizer(["the cat sees the dog near the bird."] * 40, 300, folder)
    return load_tokenizer(folder)


def _stock(folder: Path, ids: torch.Tensor) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", STOCK, str(folder), json.dumps(ids.tolist())],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_runs_hf_loads_in_stock_transformers_with_its_chat_template(tmp_path) -> None:
    from frontload.train.checkpoint import export_hf

    model, tokenizer = _model(), _tokenizer(tmp_path / "tok")
    out = export_hf(model, model.config, tmp_path / "runs" / "r" / "hf", tokenizer, rank=0)
    assert json.loads((out / "config.json").read_text())["model_type"] == "nemotron_h"
    ids = torch.randint(0, 200, (2, 11))
    stock = _stock(out, ids)
    assert not stock["frontload_imported"] and stock["class"] == "NemotronHForCausalLM"
    with torch.no_grad():
        ours = model(ids).logits
    assert (torch.tensor(stock["logits"]) - ours).abs().max() < 2e-6
    assert stock["chat"] == tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )


def test_model_export_carries_tokenizer_and_chat_template(tmp_path) -> None:
    from transformers import PreTrainedModel

    from frontload.cli import app

    model = _model()
    legacy = tmp_path / "legacy"
    PreTrainedModel.save_pretrained(model, legacy)  # the older frontload_hybrid layout
    _tokenizer(legacy)
    templates = {p.name for p in legacy.iterdir() if p.name.startswith("chat_template")}
    assert templates  # the workspace tokenizer saves its chat template beside tokenizer.json
    result = CliRunner().invoke(app, ["model", "export", str(legacy), str(tmp_path / "nh")])
    assert result.exit_code == 0, result.output
    exported = {p.name for p in (tmp_path / "nh").iterdir()}
    assert templates | {"tokenizer.json", "tokenizer_config.json", "config.json"} <= exported
    stock = _stock(tmp_path / "nh", torch.randint(0, 200, (1, 7)))
    assert stock["class"] == "NemotronHForCausalLM" and "hi" in stock["chat"]


QUIET = """
import sys, torch
from pathlib import Path
from frontload.data.tokenizer import load_tokenizer, train_tokenizer
from frontload.evaluate.generation import load_model
from frontload.model import HybridForCausalLM, preset
from frontload.train.checkpoint import export_hf
folder = Path(sys.argv[1])
train_tokenizer(["the cat sees the dog near the bird."] * 40, 300, folder / "tok")
model = HybridForCausalLM(preset("tiny"))
out = export_hf(model, model.config, folder / "hf", load_tokenizer(folder / "tok"), rank=0)
load_model(out, "cpu")
"""


def test_export_and_load_print_no_library_bars(tmp_path) -> None:
    """Issue 18: "Writing model shards" and "Loading weights" bars flooded every run's output."""
    done = subprocess.run(
        [sys.executable, "-c", QUIET, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    output = done.stdout + done.stderr
    assert "Writing model shards" not in output and "Loading weights" not in output
    assert (tmp_path / "hf" / "config.json").is_file()

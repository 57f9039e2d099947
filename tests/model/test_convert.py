"""Parity with transformers' NemotronHForCausalLM (the trusted peer) and the export/import commands."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from frontload.errors import ConfigError
from frontload.model import HybridForCausalLM, preset
from frontload.model.convert import from_nemotron_h, to_nemotron_h
from frontload.model.nemotron import from_nemotron_h_config, to_nemotron_h_config


def randomised_model(seed: int = 0, **overrides) -> HybridForCausalLM:
    """Random weights everywhere, including norms, D and conv bias, so no parameter can hide."""
    torch.manual_seed(seed)
    model = HybridForCausalLM(preset("tiny", chunk_size=8, **overrides)).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" in name or name.endswith((".D", "conv1d.bias")):
                param.add_(torch.randn_like(param) * 0.2)
    return model


@pytest.mark.parametrize("pattern", ["M*M-", "-*MM*-M"])
def test_logits_match_transformers_nemotron_h(pattern: str) -> None:
    model = randomised_model(layer_pattern=pattern)
    peer = to_nemotron_h(model)
    ids = torch.randint(0, 512, (2, 29))
    with torch.no_grad():
        ours, theirs = model(ids).logits, peer(ids).logits
    assert (ours - theirs).abs().max() < 2e-6
    back = from_nemotron_h(peer)
    with torch.no_grad():
        torch.testing.assert_close(back(ids).logits, ours, atol=0, rtol=0)


def test_greedy_generation_matches_transformers() -> None:
    model = randomised_model(1)
    peer = to_nemotron_h(model)
    prompt = torch.randint(0, 512, (2, 7))
    ours = model.generate(prompt, max_new_tokens=10, do_sample=False)
    theirs = peer.generate(prompt, max_new_tokens=10, do_sample=False)
    assert torch.equal(ours, theirs)


def test_config_round_trip_and_refusals() -> None:
    config = preset("tiny", layer_pattern="M-*M")
    back = from_nemotron_h_config(to_nemotron_h_config(config))
    assert back.to_diff_dict() == config.to_diff_dict()
    moe = to_nemotron_h_config(preset("tiny"))
    moe.layers_block_type = ["linear_attention", "moe"]
    with pytest.raises(ConfigError, match="MoE"):
        from_nemotron_h_config(moe)


def test_export_and_import_commands(tmp_path) -> None:
    from transformers import PreTrainedModel

    from frontload.cli.model import app

    model = randomised_model(2)
    # A folder in the older frontload_hybrid layout (what save_pretrained wrote before).
    PreTrainedModel.save_pretrained(model, tmp_path / "ours")
    runner = CliRunner()
    result = runner.invoke(
        app, ["export", "--format", "nemotron_h", str(tmp_path / "ours"), str(tmp_path / "nh")]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["import", str(tmp_path / "nh"), str(tmp_path / "back")])
    assert result.exit_code == 0, result.output
    from transformers import AutoModelForCausalLM, NemotronHForCausalLM

    peer = NemotronHForCausalLM.from_pretrained(tmp_path / "nh").eval()
    back = AutoModelForCausalLM.from_pretrained(tmp_path / "back").eval()
    assert isinstance(back, HybridForCausalLM)  # frontload builds its own model for nemotron_h
    ids = torch.randint(0, 512, (1, 12))
    with torch.no_grad():
        assert (peer(ids).logits - model(ids).logits).abs().max() < 2e-6
        torch.testing.assert_close(back(ids).logits, model(ids).logits, atol=0, rtol=0)
    result = runner.invoke(app, ["import", str(tmp_path / "ours"), str(tmp_path / "bad")])
    assert result.exit_code != 0 and "nemotron_h" in str(result.exception)
    # a NemotronH folder whose config.json no longer fits its weights: one clear error
    import json

    from frontload.errors import InputError
    from frontload.model.convert import import_nemotron_h

    config_file = tmp_path / "nh" / "config.json"
    edited = {**json.loads(config_file.read_text()), "hidden_size": 32}
    config_file.write_text(json.dumps(edited))
    with pytest.raises((InputError, ConfigError), match="embeddings.weight. has shape"):
        import_nemotron_h(tmp_path / "nh", tmp_path / "bad2")

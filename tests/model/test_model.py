"""The hybrid model: loss convention, packed documents, gradient checkpointing, save/load, bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModelForCausalLM

from frontload.errors import ConfigError
from frontload.model import HybridConfig, HybridForCausalLM, preset
from frontload.model.hybrid import parameter_counts
from frontload.model.nemotron import check_shapes


def tiny_model(seed: int = 0, **overrides) -> HybridForCausalLM:
    torch.manual_seed(seed)
    return HybridForCausalLM(preset("tiny", chunk_size=8, **overrides)).eval()


def test_loss_follows_the_transformers_label_convention() -> None:
    model = tiny_model()
    ids = torch.randint(0, 512, (2, 20))
    labels = ids.clone()
    labels[:, :5] = -100
    out = model(ids, labels=labels)
    want = F.cross_entropy(
        out.logits[:, :-1].reshape(-1, 512).double(), labels[:, 1:].reshape(-1), ignore_index=-100
    )
    assert out.logits.dtype == torch.float32
    torch.testing.assert_close(out.loss.double(), want, atol=1e-5, rtol=1e-5)


def test_packed_rows_do_not_leak_across_documents() -> None:
    """Documents packed into one row give the logits of each document run alone."""
    model = tiny_model(1)
    docs = [torch.randint(0, 512, (n,)) for n in (7, 12, 5)]
    row = torch.cat(docs)[None]
    seq_idx = torch.cat([torch.full((len(d),), i, dtype=torch.int32) for i, d in enumerate(docs)])[
        None
    ]
    position_ids = torch.cat([torch.arange(len(d)) for d in docs])[None]
    with torch.no_grad():
        by_seq_idx = model(row, seq_idx=seq_idx).logits
        by_positions = model(row, position_ids=position_ids).logits
        alone = torch.cat([model(d[None]).logits for d in docs], dim=1)
        unpacked = model(row).logits
    torch.testing.assert_close(by_seq_idx, alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(by_positions, alone, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(unpacked[:, 7:], alone[:, 7:], atol=1e-3)


def test_gradient_checkpointing_gives_the_same_gradients() -> None:
    ids = torch.randint(0, 512, (2, 16))
    grads = []
    for checkpointing in (False, True):
        model = tiny_model(2).train()
        if checkpointing:
            model.activation_checkpointing_enable()
        model(ids, labels=ids).loss.backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    torch.testing.assert_close(grads[0], grads[1])


def test_a_few_steps_of_training_reduce_the_loss() -> None:
    model = tiny_model(3).train()
    ids = torch.randint(0, 64, (4, 32))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss = model(ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 1.0


def test_save_and_load_through_the_auto_classes(tmp_path) -> None:
    model = tiny_model(4)
    model.save_pretrained(tmp_path)
    assert AutoConfig.from_pretrained(tmp_path).model_type == "nemotron_h"  # stock-loadable
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, HybridForCausalLM)
    ids = torch.randint(0, 512, (1, 9))
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, model(ids).logits)


def test_init_is_the_documented_one() -> None:
    model = tiny_model(5, layer_pattern="M*-M*-")
    mixer = model.backbone.layers[0].mixer
    A = torch.exp(mixer.A_log)
    assert torch.all((A >= 1) & (A <= 16))
    dt = F.softplus(mixer.dt_bias)
    assert torch.all((dt >= 1e-4 * 0.99) & (dt <= 0.1 * 1.01))
    assert torch.all(mixer.D == 1)
    residual_std = model.backbone.layers[2].mixer.down_proj.weight.std().item()
    assert residual_std < 0.02 / 2.5  # 0.02 / sqrt(2 * 6) ~ 0.0058
    assert abs(model.backbone.layers[2].mixer.up_proj.weight.std().item() - 0.02) < 0.004


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"layer_pattern": "M*X"}, "layer_pattern"),
        ({"layer_pattern": ""}, "layer_pattern"),
        ({"num_attention_heads": 4, "num_key_value_heads": 3}, "num_key_value_heads"),
        ({"mamba_num_heads": 4, "n_groups": 3}, "n_groups"),
        ({"hidden_size": 0}, "hidden_size"),
        ({"tie_word_embeddings": True}, "tie_word_embeddings"),
        ({"hidden_size": "abc"}, "hidden_size.*whole number"),  # `fl train info --set` strings
        ({"layer_pattern": 5}, "layer_pattern.*must be a string"),
        ({"time_step_max": "x"}, "time steps must be numbers"),
    ],
)
def test_bad_configs_name_the_field(overrides: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        preset("tiny", **overrides)


def test_unknown_preset_and_unknown_field() -> None:
    with pytest.raises(ConfigError, match="unknown model preset"):
        preset("3b")
    with pytest.raises(ConfigError, match="d_model"):
        preset("tiny", d_model=32)


def test_sequence_longer_than_configured() -> None:
    model = tiny_model(max_position_embeddings=16)
    with pytest.raises(ConfigError, match="max_position_embeddings"):
        model(torch.zeros(1, 17, dtype=torch.long))


def test_checkpoint_of_another_shape_is_refused(tmp_path) -> None:
    small = tiny_model()
    other = HybridForCausalLM(preset("tiny", hidden_size=32))
    with pytest.raises(ConfigError, match="backbone.embeddings.weight"):
        check_shapes(small, other.state_dict(), "other.safetensors")
    with pytest.raises(ConfigError, match="missing"):
        check_shapes(small, HybridForCausalLM(preset("tiny", layer_pattern="M*")).state_dict(), "x")


def test_parameter_counts_add_up() -> None:
    config = HybridConfig()
    counts = parameter_counts(config)
    parts = sum(v for k, v in counts.items() if k != "total")
    assert (
        parts == counts["total"] == sum(p.numel() for p in HybridForCausalLM(config).parameters())
    )
    assert 8.0e9 < parameter_counts(preset("8b"))["total"] < 8.2e9


def test_train_info_command() -> None:
    import json

    from typer.testing import CliRunner

    from frontload.cli import app

    result = CliRunner().invoke(app, ["train", "info", "tiny", "--json"])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.output)
    assert counts["total"] == parameter_counts(preset("tiny"))["total"]
    assert counts["mamba"] > 0 and counts["attention"] > 0 and counts["mlp"] > 0
    table = CliRunner().invoke(app, ["train", "info", "tiny"])
    assert f"total: {counts['total'] / 1e6:.3f}M parameters" in table.output  # not "0.000B"


def test_load_pretrained_names_the_mismatch(tmp_path) -> None:
    from frontload.model import load_pretrained

    tiny_model().save_pretrained(tmp_path)
    loaded = load_pretrained(tmp_path)
    assert loaded.config.hidden_size == 64
    with pytest.raises(ConfigError, match="(?s)backbone.embeddings.weight.*hidden_size"):
        load_pretrained(tmp_path, config=preset("tiny", hidden_size=32, chunk_size=8))
    with pytest.raises(ConfigError, match="(?s)lacks parameter.*layer_pattern"):
        load_pretrained(tmp_path, config=preset("tiny", layer_pattern="M*M-M", chunk_size=8))


def test_auto_from_pretrained_of_another_shape_is_one_clear_error(tmp_path) -> None:
    """AutoModelForCausalLM goes through our shape check: a ConfigError, not transformers' report."""
    import json

    tiny_model().save_pretrained(tmp_path)
    with pytest.raises(ConfigError, match="(?s)embeddings.weight.*differs in hidden_size"):
        AutoModelForCausalLM.from_pretrained(tmp_path, config=preset("tiny", hidden_size=32))
    config_file = tmp_path / "config.json"  # an edited config.json next to the old weights
    config_file.write_text(json.dumps({**json.loads(config_file.read_text()), "hidden_size": 32}))
    with pytest.raises(ConfigError, match="(?s)has shape.*config.json was edited"):
        AutoModelForCausalLM.from_pretrained(tmp_path)


def test_position_ids_shared_by_the_batch() -> None:
    """A (T,) or (1, T) position_ids (TRL's padding-free layout) applies to every row."""
    from frontload.model.hybrid import resolve_seq_idx

    positions = torch.tensor([0, 1, 2, 0, 1, 0])
    want = torch.tensor([[0, 0, 0, 1, 1, 2]] * 3, dtype=torch.int32)
    assert torch.equal(resolve_seq_idx(None, positions, 3, 6, 0), want)
    assert torch.equal(resolve_seq_idx(None, positions[None], 3, 6, 0), want)
    assert resolve_seq_idx(None, torch.arange(6), 3, 6, 0) is None
    assert resolve_seq_idx(None, positions, 3, 6, past=4) is None

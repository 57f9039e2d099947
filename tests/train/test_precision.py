"""One precision story: 1 process (bf16 autocast, fp32 weights) and 2 processes (FSDP2 over gloo,
bf16 autocast, the precision groups of `train.parallel`) train the same way.

Tolerance: bf16 autocast rounds matmul inputs and outputs to 8 bits of mantissa (unit roundoff
3.9e-3), and the two runs sum gradients in another order (one batch of 4 rows against 2 + 2 rows
reduced over processes). So the first step's gradients must agree to 1e-2 of each tensor's largest
entry (measured: at most 5.6e-3) and the losses of 3 AdamW steps to 1e-4 relative (measured 1.2e-5).
The dtypes the forward sees are checked too: fp32 for A_log, dt_bias, D, conv, norms and embeddings;
bf16 for the matmul weights.
"""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from frontload.model import HybridForCausalLM, preset

STEPS = 3
IDS = torch.randint(0, 512, (4, 32), generator=torch.Generator().manual_seed(1))
SEQ_IDX = torch.tensor(
    [[0] * 12 + [1] * 20, [0] * 32, [0] * 5 + [1] * 27, [0] * 32], dtype=torch.int32
)


def _model() -> HybridForCausalLM:
    torch.manual_seed(0)
    return HybridForCausalLM(preset("tiny"))


def _train(model, rows: slice, world: int) -> tuple[list[float], dict[str, torch.Tensor]]:
    """Losses of a few AdamW steps, and the full gradients of the first step."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses, grads = [], {}
    for step in range(STEPS):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(IDS[rows], labels=IDS[rows], seq_idx=SEQ_IDX[rows]).loss
        loss.backward()
        if step == 0:
            for name, param in model.named_parameters():
                grad = param.grad
                grads[name] = grad.full_tensor() if hasattr(grad, "full_tensor") else grad.clone()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        mean = loss.detach().double()
        if world > 1:
            dist.all_reduce(mean)
        losses.append(float(mean) / world)
    return losses, grads


def _two_process_worker(rank: int, world: int, port: int, out: str) -> None:
    from frontload.train.parallel import apply_fsdp, model_blocks

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    model = _model()
    apply_fsdp(
        model,
        model_blocks(model),
        device_type="cpu",
        world_size=world,
        bf16=True,
        reshard_after_forward=True,
    )
    seen = {}
    mamba = next(block for block in model.backbone.layers if block.kind == "mamba")
    attention = next(block for block in model.backbone.layers if block.kind == "attention")

    def record(module, args):
        # Unsharded parameters as the forward sees them.
        seen.update(
            A_log=mamba.mixer.A_log.dtype,
            dt_bias=mamba.mixer.dt_bias.dtype,
            D=mamba.mixer.D.dtype,
            gated_norm=mamba.mixer.norm.weight.dtype,
            block_norm=mamba.norm.weight.dtype,
            conv=mamba.mixer.conv1d.weight.dtype,
            embeddings=model.backbone.embeddings.weight.dtype,
        )

    mamba.mixer.out_proj.register_forward_pre_hook(record)
    attention.mixer.q_proj.register_forward_pre_hook(
        lambda module, args: seen.update(q_proj=module.weight.dtype)
    )
    mamba.mixer.in_proj.register_forward_pre_hook(
        lambda module, args: seen.update(in_proj=module.weight.dtype)
    )
    half = IDS.shape[0] // world
    losses, grads = _train(model, slice(rank * half, (rank + 1) * half), world)
    if rank == 0:
        torch.save({"losses": losses, "grads": grads, "dtypes": seen}, out)
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.timeout(600)
def test_one_and_two_processes_train_alike_with_fp32_ssm_params(tmp_path) -> None:
    out = tmp_path / "two.pt"
    mp.spawn(_two_process_worker, args=(2, _free_port(), str(out)), nprocs=2, join=True)
    two = torch.load(out, weights_only=True)
    model = _model()
    one, grads = _train(model, slice(None), 1)

    dtypes = two["dtypes"]
    for name in ("A_log", "dt_bias", "D", "gated_norm", "block_norm", "conv", "embeddings"):
        assert dtypes[name] == torch.float32, name
    assert dtypes["in_proj"] == torch.bfloat16
    assert dtypes["q_proj"] == torch.bfloat16
    assert two["losses"] == pytest.approx(one, rel=1e-4)
    assert one[-1] < one[0]
    for name, grad in grads.items():
        diff = (two["grads"][name].float() - grad).abs().max() / grad.abs().max()
        assert diff < 1e-2, name

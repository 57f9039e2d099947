"""Activation checkpointing, per-block compile and FSDP2, applied to the model in one place."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from frontload.progress import console


def _log(message: str) -> None:
    """Say what was turned on, once per job (rank 0)."""
    import torch.distributed as dist

    if not dist.is_initialized() or dist.get_rank() == 0:
        console.print(message)


@dataclass(frozen=True)
class Block:
    """One residual block of the model and the kind of mixer it holds."""

    index: int
    kind: str
    module: nn.Module


def model_blocks(model: nn.Module) -> list[Block]:
    """The residual blocks in order (`model.backbone.layers`, see docs/readme/model.md)."""
    return [
        Block(index, config_kind, layer)
        for index, (config_kind, layer) in enumerate(
            zip(model.config.layer_kinds, model.backbone.layers, strict=True)
        )
    ]


def parallelize(
    model: nn.Module,
    *,
    world_size: int,
    device_type: str,
    bf16: bool,
    checkpoint_kinds: list[str],
    compile_blocks: bool,
    reshard_after_forward: bool,
) -> nn.Module:
    """Apply, in this order (torchtitan's): activation checkpointing, then per-block compile (so the
    compiled region includes the recompute), then FSDP2 per block and finally the root (so each
    block's parameters are gathered just before it runs and freed after)."""
    blocks = model_blocks(model)
    decoder = model.backbone
    if checkpoint_kinds:
        apply_activation_checkpointing(decoder, blocks, kinds=set(checkpoint_kinds))
        blocks = model_blocks(model)
    if compile_blocks:
        apply_compile(blocks)
    if world_size > 1:
        apply_fsdp(
            model,
            blocks,
            device_type=device_type,
            world_size=world_size,
            bf16=bf16,
            reshard_after_forward=reshard_after_forward,
        )
    return model


def apply_activation_checkpointing(decoder: nn.Module, blocks: list[Block], *, kinds: set[str]):
    """Wrap the chosen blocks so their activations are recomputed in backward (memory for time)."""
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper

    wrapped = 0
    for block in blocks:
        if block.kind in kinds:
            decoder.layers[block.index] = checkpoint_wrapper(block.module, preserve_rng_state=False)
            wrapped += 1
    _log(f"activation checkpointing: {wrapped} blocks ({', '.join(sorted(kinds))})")


def apply_compile(blocks: list[Block]) -> None:
    """Compile each block in place (names unchanged): small graphs compile fast, and blocks of the
    same kind and shape reuse one compiled graph."""
    for block in blocks:
        block.module.compile()
    _log(f"torch.compile: {len(blocks)} blocks")


def apply_fsdp(
    model: nn.Module,
    blocks: list[Block],
    *,
    device_type: str,
    world_size: int,
    bf16: bool,
    reshard_after_forward: bool,
) -> None:
    """fully_shard each block, then the root (embeddings, final norm, head); bf16 parameters in
    compute with fp32 master weights and fp32 gradient reduction when `bf16`."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    mesh = init_device_mesh(device_type, (world_size,), mesh_dim_names=("dp",))
    policy = (
        MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
        if bf16
        else MixedPrecisionPolicy()
    )
    for position, block in enumerate(blocks):
        # The last block is resharded by the root's backward anyway; keeping it saves a gather.
        last = position == len(blocks) - 1
        fully_shard(
            block.module,
            mesh=mesh,
            mp_policy=policy,
            reshard_after_forward=reshard_after_forward and not last,
        )
    fully_shard(model, mesh=mesh, mp_policy=policy, reshard_after_forward=reshard_after_forward)
    _log(
        f"FSDP2: {len(blocks)} blocks + root over {world_size} processes ({device_type}), "
        f"{'bf16 params / fp32 reduce' if bf16 else 'fp32'}"
    )

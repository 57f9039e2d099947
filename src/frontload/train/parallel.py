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
    replicate: int = 1,
) -> nn.Module:
    """Apply, in this order (torchtitan's): activation checkpointing, then per-block compile (so the
    compiled region includes the recompute), then FSDP2 per block and finally the root (so each
    block's parameters are gathered just before it runs and freed after). `replicate` > 1 makes
    it HSDP: `replicate` groups that each shard the model over world_size / replicate processes."""
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
            replicate=replicate,
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
    replicate: int = 1,
) -> None:
    """fully_shard each block, then the root (embeddings, final norm, head); bf16 parameters in
    compute with fp32 master weights and fp32 gradient reduction when `bf16`."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    mesh = data_parallel_mesh(device_type, world_size, replicate)
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
    layout = f"HSDP {replicate} x {world_size // replicate}" if replicate > 1 else "FSDP2"
    _log(
        f"{layout}: {len(blocks)} blocks + root over {world_size} processes ({device_type}), "
        f"{'bf16 params / fp32 reduce' if bf16 else 'fp32'}"
    )


def data_parallel_mesh(device_type: str, world_size: int, replicate: int = 1):
    """FSDP: a 1-D mesh over every process. HSDP: a 2-D (replicate x shard) mesh whose rows are
    consecutive ranks (one machine under torchrun), so parameters are gathered within a machine
    and only gradients cross machines."""
    from torch.distributed.device_mesh import init_device_mesh

    if replicate <= 1:
        return init_device_mesh(device_type, (world_size,), mesh_dim_names=("dp_shard",))
    shape = (replicate, world_size // replicate)
    return init_device_mesh(device_type, shape, mesh_dim_names=("dp_replicate", "dp_shard"))


def replicas(strategy: str, world_size: int, shard_size: int | None, per_node: int) -> int:
    """How many replica groups the recipe's `parallel:` asks for (1 = plain FSDP)."""
    from frontload.errors import ConfigError

    if strategy == "fsdp" or world_size == 1:
        return 1
    shard = shard_size or per_node
    if world_size % shard:
        raise ConfigError(
            f"parallel.shard_size {shard} does not divide the {world_size} processes",
            "choose a shard_size that divides nnodes x nproc_per_node",
        )
    return world_size // shard


_WRAPPERS = {"_checkpoint_wrapped_module", "_orig_mod"}  # activation checkpointing, compile


@torch.no_grad()
def init_weights(model: nn.Module, seed: int, device: torch.device) -> None:
    """Initialise a model built on the meta device, each process writing only its own shards
    (torchtitan's way: no full copy anywhere, no broadcast).

    Every module with parameters of its own is initialised by the model's `_init_weights` on a
    scratch copy holding full-size tensors of just those parameters, from a generator seeded by
    (seed, module name); each process keeps its slice. The weights therefore depend only on the
    seed, never on how many processes share them, so 1, 1 x 2 and 2 x 1 processes start from the
    same model. A parameter the model's init does not write is an error, not garbage.
    """
    import copy
    import hashlib

    from torch.distributed.tensor import DTensor, distribute_tensor

    model.to_empty(device=device)
    for name, module in model.named_modules():
        own = dict(module.named_parameters(recurse=False))
        if not own:
            continue
        scratch = copy.copy(module)  # shares nothing that init writes: its parameters are new
        scratch._parameters = {  # keeps the None entries (a Linear without bias)
            key: None
            if param is None
            else nn.Parameter(torch.full(param.shape, float("nan"), dtype=param.dtype))
            for key, param in module._parameters.items()
        }
        scratch._modules = {}
        # the name without wrapper levels: checkpointing or compile must not change the weights
        plain = ".".join(part for part in name.split(".") if part not in _WRAPPERS)
        digest = hashlib.blake2b(f"{seed}/{plain}".encode(), digest_size=8).digest()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int.from_bytes(digest, "little") & (2**63 - 1))
            model._init_weights(scratch)  # type: ignore[operator]
        for key, param in own.items():
            full = scratch._parameters[key].detach()
            if torch.isnan(full).any():
                raise RuntimeError(f"the model's _init_weights leaves {name}.{key} unset")
            if isinstance(param, DTensor):
                local = distribute_tensor(
                    full, param.device_mesh, param.placements, src_data_rank=None
                ).to_local()
                param.to_local().copy_(local)
            else:
                param.copy_(full)

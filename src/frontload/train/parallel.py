"""Activation checkpointing, per-block compile and FSDP2, applied to the model in one place."""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass

import torch
from torch import nn

from frontload.errors import ConfigError
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
    """fully_shard each block, then the root (embeddings, final norm, head), on a 1-D (FSDP) or
    2-D replicate x shard (HSDP) mesh, with the precision groups of `precision_groups` when `bf16`."""
    from torch.distributed.fsdp import fully_shard

    mesh = data_parallel_mesh(device_type, world_size, replicate)
    shard_in_precision_groups(
        model,
        blocks,
        mesh,
        bf16=bf16,
        reshard_after_forward=reshard_after_forward,
        shard=fully_shard,
    )
    layout = f"HSDP {replicate} x {world_size // replicate}" if replicate > 1 else "FSDP2"
    _log(
        f"{layout}: {len(blocks)} blocks + root over {world_size} processes ({device_type}), "
        + ("bf16 matmul weights, fp32 SSM params/norms/embeddings, fp32 reduce" if bf16 else "fp32")
    )


def precision_groups(model: nn.Module, blocks: list[Block]) -> list[tuple[nn.Module, bool]]:
    """(module, gathered in bf16?) in the order to shard them (inner groups first).

    One precision story for 1 and N processes: compute runs under bf16 autocast with fp32 master
    weights either way. Autocast casts matmul weights to bf16 at use, so FSDP2 may as well gather
    those in bf16 (half the traffic, the same numbers); everything autocast keeps in fp32 (Mamba-2's
    A_log, dt_bias, D, the conv, every norm weight, the embedding table) is gathered in fp32 through
    its own group. Matmul weights: the in/out projections of Mamba-2 mixers, whole attention and FFN
    mixers, and the LM head; each block then claims the rest of its parameters in fp32.
    """
    groups: list[tuple[nn.Module, bool]] = []
    for block in blocks:
        mixer = block.module.mixer  # also through an activation-checkpoint wrapper
        if block.kind == "mamba":
            groups += [(mixer.in_proj, True), (mixer.out_proj, True)]
        else:
            groups.append((mixer, True))
        groups.append((block.module, False))
    groups += [(model.lm_head, True), (model, False)]
    return groups


def shard_in_precision_groups(
    model: nn.Module,
    blocks: list[Block],
    mesh,
    *,
    bf16: bool,
    reshard_after_forward: bool,
    shard,
) -> None:
    """Apply `shard` (fully_shard) per precision group when `bf16`, else per block and root in fp32.

    Gradients are reduced in fp32 either way. The last block is resharded by the root's backward
    anyway, so it keeps its parameters after forward (saves a gather)."""
    from torch.distributed.fsdp import MixedPrecisionPolicy

    low = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    full = MixedPrecisionPolicy(reduce_dtype=torch.float32)  # parameters as stored: fp32
    last_block = blocks[-1].module if blocks else None
    if bf16:
        units = precision_groups(model, blocks)
    else:
        units = [(block.module, False) for block in blocks] + [(model, False)]
    for module, in_bf16 in units:
        shard(
            module,
            mesh=mesh,
            mp_policy=low if in_bf16 else full,
            reshard_after_forward=reshard_after_forward and module is not last_block,
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

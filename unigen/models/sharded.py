"""Build a unified model sharded with FSDP2 without any rank ever holding all of it.

The model is built on the meta device (shapes only), each decoder layer and then the rest are
wrapped with ``fully_shard`` (FSDP2), and only then is memory allocated: each rank's shard of every
parameter (``to_empty``). Weights come from a transformers folder, each rank reading just its own
rows of every tensor from the safetensors files (``get_slice``), so host RAM per rank stays about
1/world of the model, plus one tensor row-block in flight. A source without weights (a preset or an
architecture YAML) is initialised in place, shard by shard, with the model's own initialiser.

At 7B the usual path (every rank builds the full fp32 model, then FSDP shards it) needs ~30 GB of
host RAM per rank; here it is the shard (~3.7 GB per rank of 8 in fp32).
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import safe_open
from torch import nn
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard, register_fsdp_forward_method
from torch.distributed.tensor import DTensor, Shard

from unigen.models.unified import UnifiedModel
from unigen.models.loading import adapter_class, resolve_config


def build_on_meta(source: str, freeze: tuple[str, ...] = ("vision", "vq"), attn_implementation: str = "sdpa",
                  prompt_template: str | None = None) -> tuple[UnifiedModel, bool]:
    """(the unified model with every parameter and buffer on the meta device, has pretrained weights)."""
    config, tokenizer, pretrained = resolve_config(source)
    adapter = adapter_class(config.model_type, source)
    config._attn_implementation = attn_implementation
    with torch.device("meta"):
        hf = adapter.hf_class(config)
    return adapter(hf, adapter.token_spec(config, tokenizer, prompt_template), freeze=tuple(freeze)), pretrained


UNIFIED_METHODS = ("embed_text", "embed_image", "embed_mixed", "backbone", "text_logits", "image_logits",
                   "encode_images", "decode_images")
"""``UnifiedModel`` methods callers use instead of ``forward``."""


def fsdp_groups(model: UnifiedModel) -> list[nn.Module]:
    """The modules to ``fully_shard``, innermost first: every decoder layer, the input and output
    embeddings, then each remaining child of the transformers model (vision encoder, VQ model,
    image embeddings / aligner / head, the language model holding its final norm).

    A group must be entered through its ``forward`` (that is when FSDP2 gathers it): the unified
    interface calls the embeddings and heads directly, so each is its own group; the VQ model is
    entered through ``encode`` / ``decode``, registered as forward methods.
    """
    hf = model.hf
    layer_cls = model.decoder_layer_class()
    groups = [m for m in hf.modules() if isinstance(m, layer_cls)]
    groups += [m for m in (hf.get_input_embeddings(), hf.get_output_embeddings()) if m is not None]
    inner = getattr(hf, "model", None)
    for parent in (p for p in (inner, hf) if p is not None):
        for child in parent.children():
            if child is not inner and all(child is not g for g in groups) and any(True for _ in child.parameters()):
                groups.append(child)
    return groups


def shard(model: UnifiedModel, mesh: DeviceMesh, mp_policy: MixedPrecisionPolicy | None = None,
          reshard_after_forward: bool = True) -> UnifiedModel:
    """``fully_shard`` each of :func:`fsdp_groups`, then the model itself (whatever is left)."""
    kwargs = dict(mesh=mesh, reshard_after_forward=reshard_after_forward, mp_policy=mp_policy or MixedPrecisionPolicy())
    for group in fsdp_groups(model):
        fully_shard(group, **kwargs)
        for method in ("encode", "decode"):
            if hasattr(group, method) and callable(getattr(group, method)):
                register_fsdp_forward_method(group, method)
    fully_shard(model, **kwargs)
    for method in UNIFIED_METHODS:  # the root must be entered first: each API call counts as its forward
        register_fsdp_forward_method(model, method)
    return model


def materialize(model: UnifiedModel, source: str, pretrained: bool, device: torch.device | str,
                dtype: torch.dtype | None = None) -> None:
    """Allocate this rank's shards on ``device`` and fill them: from the safetensors files of
    ``source`` when ``pretrained``, else with the model's initialiser."""
    if dtype is not None:
        model.to(dtype)  # free on meta: only the dtype changes
    model.to_empty(device=device)
    hf = model.hf
    with torch.no_grad():
        for module in hf.modules():  # non-persistent buffers (RoPE tables, position ids) are not in any file
            if module._non_persistent_buffers_set or not pretrained:
                hf._init_weights(module)
        if pretrained:
            load_rows(hf, model.weight_files(Path(source)), Path(source))


def load_sharded(source: str, mesh: DeviceMesh, device: torch.device | str, dtype: torch.dtype | None = None,
                 freeze: tuple[str, ...] = ("vision", "vq"), attn_implementation: str = "sdpa",
                 prompt_template: str | None = None, mp_policy: MixedPrecisionPolicy | None = None) -> UnifiedModel:
    """Meta build -> FSDP2 sharding over ``mesh`` -> this rank's shards loaded (see the module doc)."""
    model, pretrained = build_on_meta(source, freeze, attn_implementation, prompt_template)
    shard(model, mesh, mp_policy)
    materialize(model, source, pretrained, device, dtype)
    model.train(model.training)  # frozen parts back in eval mode
    return model


def load_rows(hf: nn.Module, files: dict[str, tuple[Path, str]], folder: Path, max_bytes: int = 256 << 20) -> None:
    """Copy each rank's rows (its dim-0 shard) of every tensor from the files into ``hf``'s state
    (``files``: our tensor name -> (file, its name there), ``UnifiedModel.weight_files``)."""
    state = hf.state_dict()
    missing = sorted(set(state) - set(files))
    if missing:
        raise KeyError(f"'{folder}' lacks {len(missing)} tensor(s) of the model, e.g. {missing[:3]}")
    by_file: dict[Path, list[str]] = {}
    for name in state:
        by_file.setdefault(files[name][0], []).append(name)
    for path, names in by_file.items():
        for batch in read_batches(names, state, max_bytes):
            with safe_open(path, framework="pt") as f:  # reopened per batch: the pages read are unmapped
                for name, first, last in batch:
                    target = state[name]
                    local = target.to_local() if isinstance(target, DTensor) else target
                    if last > first:
                        offset = local_offset(target) if isinstance(target, DTensor) else 0
                        local[first:last].copy_(f.get_slice(files[name][1])[offset + first:offset + last])
                    elif local.dim() == 0:
                        local.copy_(f.get_tensor(files[name][1]))


def read_batches(names: list[str], state: dict[str, torch.Tensor], max_bytes: int) -> list[list[tuple[str, int, int]]]:
    """This rank's rows of ``names`` as (name, first, last) local row ranges, in runs of about
    ``max_bytes``. A memory-mapped file keeps every page read resident until it is closed: a
    single-file checkpoint (BAGEL's ``ema.safetensors``) read in one opening leaves the whole shard
    mapped beside its copy (measured: the peak doubled, to the whole model)."""
    batches, current, size = [], [], 0
    for name in names:
        tensor = state[name]
        local = tensor.to_local() if isinstance(tensor, DTensor) else tensor
        rows = local.shape[0] if local.dim() else 0
        row_bytes = local[0].numel() * local.element_size() if rows else 0
        step = max(1, max_bytes // max(row_bytes, 1))
        for first in range(0, max(rows, 1), step):
            last = min(first + step, rows)
            current.append((name, first, last))
            size += (last - first) * row_bytes
            if size >= max_bytes:
                batches.append(current)
                current, size = [], 0
    return batches + ([current] if current else [])


def local_offset(tensor: DTensor) -> int:
    """First dim-0 row of this rank's shard (FSDP2 splits dim 0 like ``torch.chunk``)."""
    (placement,) = tensor.placements
    if not isinstance(placement, Shard) or placement.dim != 0:
        raise ValueError(f"expected FSDP2's Shard(0) placement, got {tensor.placements}")
    mesh = tensor.device_mesh
    chunk = -(-tensor.shape[0] // mesh.size())
    return min(mesh.get_local_rank() * chunk, tensor.shape[0])

"""Image ids/s: unigen's sampler vs transformers' ``JanusForConditionalGeneration.generate`` (image mode).

Both draw images for the same prompts with the same model, batch, image-token count and CFG scale,
in one process, sampling at temperature 1. A greedy run first checks that both produce the same ids.
Then the unified (text + self-emitted switch + image) and explicit modes are timed.

    python benchmarks/generate.py [--model janus-tiny] [--batch-size 32] [--cfg 5] [--threads 1]
    python benchmarks/generate.py --model configs/models/janus_pro_1b.yaml --device cuda --dtype bfloat16

Prints both image-mode throughputs and the ratio ours / transformers (target >= 2), the ms per
decode step and, on CUDA, its ratio to the memory-bandwidth floor: the bytes of weights one image
step reads (backbone without its embedding table, image head and aligner) over the GPU's memory
bandwidth (a measured device-to-device copy; the data-sheet figure by device name is printed beside
it). The static KV cache the step also reads is reported separately. On CUDA the sampler runs
twice: its eager loop and its CUDA-graph decoder (``decoder="cuda_graphs"``, the default there).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from unigen.dtypes import CAST_NAMES, torch_dtype
from unigen.generation import SamplingConfig, sample
from unigen.generation.sampler import prompt_batch
from unigen.models.loading import load_model

PROMPTS = ["a photo of a red cat", "two dogs on green grass", "a blue cube left of a yellow sphere",
           "a bicycle", "three apples on a wooden table", "a giraffe under a purple sky"]


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fns: dict[str, object], device: str, repeats: int) -> dict[str, tuple[float, float]]:
    """Median (wall, process CPU) seconds of each ``fn()`` after one warm-up call.

    Runs are interleaved (A B A B ...) so that load from other processes hits both alike; on a
    shared CPU the process CPU time is the steadier figure (with 1 thread it is the work done).
    """
    for fn in fns.values():
        fn()
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync(device)
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            sync(device)
            times[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    return {name: (statistics.median(w for w, _ in t), statistics.median(c for _, c in t)) for name, t in times.items()}


BANDWIDTH_TBS = {"H200": 4.8, "H100 PCIe": 2.0, "H100 NVL": 3.9, "H100": 3.35, "A100-SXM4-80GB": 2.04,
                 "A100 80GB PCIe": 1.94, "A100": 1.56, "L40S": 0.864, "RTX 4090": 1.01}
"""Data-sheet memory bandwidth (TB/s) by device-name substring, most specific first."""


def measured_bandwidth(device: str, size: int = 1 << 30, repeats: int = 10) -> float:
    """Device memory bandwidth in bytes/s from a device-to-device copy (read + write counted)."""
    src = torch.empty(size, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        dst.copy_(src)
    sync(device)
    return 2 * size * repeats / (time.perf_counter() - start)


def step_bytes(model, rows: int, cache_len: int) -> tuple[int, int]:
    """(weight bytes, KV-cache bytes) one image-phase decode step reads: every backbone matrix, the
    image head and aligner (an embedding table is only gathered from) and the whole static cache."""
    hf = model.hf
    lm = hf.model.language_model
    weights = [p for p in lm.parameters()] + [p for p in hf.model.generation_head.parameters()]
    weights += list(hf.model.generation_aligner.parameters())
    skip = {id(p) for p in lm.embed_tokens.parameters()}
    weight_bytes = sum(p.numel() * p.element_size() for p in weights if id(p) not in skip)
    cfg = hf.config.text_config
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    element = next(lm.parameters()).element_size()
    kv_bytes = 2 * cfg.num_hidden_layers * rows * cfg.num_key_value_heads * head_dim * cache_len * element
    return weight_bytes, kv_bytes


def hf_image_generate(model, prompts: list[str], cfg: float, greedy: bool) -> torch.Tensor:
    """transformers' own image-mode generation on the same left-padded prompts (ending with BOI)."""
    ids, mask = prompt_batch(model, prompts, SamplingConfig(mode="direct", cfg=1.0))
    device = next(model.parameters()).device
    hf = model.hf
    hf.generation_config.generation_kwargs = {"boi_token_id": model.spec.boi_id}
    hf.generation_config.pad_token_id = model.spec.pad_id
    hf.generation_config.bos_token_id = model.spec.bos_id
    with torch.no_grad():
        return hf.generate(ids.to(device), attention_mask=mask.to(device), generation_mode="image",
                           do_sample=not greedy, guidance_scale=cfg)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", "--preset", "--config", dest="model", default="janus-tiny",
                   help="preset, architecture YAML (configs/models/janus_pro_1b.yaml) or transformers folder")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--cfg", type=float, default=5.0)
    p.add_argument("--max-reasoning", type=int, default=32, help="reasoning budget for the unified/explicit runs")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--modes", default="explicit,unified", help="text-then-image modes to time after image mode ('' = none)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (0 = torch's default)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=CAST_NAMES)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    with torch.device(a.device):  # random init on the device: seconds, not minutes, at 1B size
        model = load_model(a.model, dtype=torch_dtype(a.dtype)).eval()
    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(a.batch_size)]
    n_ids = a.batch_size * model.spec.image.num_tokens
    print(f"model {a.model}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M params, batch {a.batch_size}, "
          f"{model.spec.image.num_tokens} ids/image, cfg {a.cfg}, {a.device} {a.dtype}, threads {torch.get_num_threads()}")

    greedy = SamplingConfig(mode="direct", greedy=True, cfg=a.cfg)
    ours_ids = torch.from_numpy(__import__("numpy").stack([r.image_tokens for r in sample(model, prompts[:4], greedy)]))
    same = torch.equal(ours_ids, hf_image_generate(model, prompts[:4], a.cfg, greedy=True).cpu())
    print(f"greedy parity with transformers (4 prompts): {'identical ids' if same else 'DIFFERENT ids'}")

    direct = SamplingConfig(mode="direct", cfg=a.cfg)
    seeds = list(range(a.batch_size))
    arms = {"ours": lambda: sample(model, prompts, direct, seeds=seeds),
            "hf": lambda: hf_image_generate(model, prompts, a.cfg, greedy=False)}
    labels = {"hf": "transformers generate", "ours": "unigen sampler"}
    if a.device.startswith("cuda"):
        arms["eager"] = lambda: sample(model, prompts, direct, seeds=seeds, decoder="eager")
        labels.update(ours="unigen (CUDA graphs)", eager="unigen (eager loop)")
    t = timed(arms, a.device, a.repeats)
    steps = model.spec.image.num_tokens
    for name in ("hf", *(n for n in arms if n != "hf")):
        wall, cpu = t[name]
        print(f"image mode  {labels[name]:22s} {n_ids / wall:8.0f} image ids/s wall ({wall:.3f} s/batch, "
              f"{wall / steps * 1e3:.2f} ms/decode step), {n_ids / cpu:8.0f} per CPU-second")
    print(f"ratio unigen / transformers: {t['hf'][0] / t['ours'][0]:.2f}x wall, "
          f"{t['hf'][1] / t['ours'][1]:.2f}x CPU time")
    if a.device.startswith("cuda"):
        rows = a.batch_size * (2 if a.cfg > 1 else 1)
        width = prompt_batch(model, prompts, direct)[0].shape[1]
        weight_bytes, kv_bytes = step_bytes(model, rows, width + steps)
        bandwidth = measured_bandwidth(a.device)
        name = torch.cuda.get_device_name(torch.device(a.device))
        sheet = next((v for k, v in BANDWIDTH_TBS.items() if k in name), None)
        floor = weight_bytes / bandwidth
        step = t["ours"][0] / steps
        print(f"{name}: measured copy bandwidth {bandwidth / 1e12:.2f} TB/s (data sheet {sheet or 'n/a'} TB/s); "
              f"a step reads {weight_bytes / 1e9:.2f} GB of weights (+ {kv_bytes / 1e9:.2f} GB static KV cache)")
        print(f"decode step {step * 1e3:.2f} ms vs weight-bytes floor {floor * 1e3:.3f} ms: {step / floor:.1f}x the floor "
              f"({step / ((weight_bytes + kv_bytes) / bandwidth):.1f}x the weights + KV-cache floor)")

    for mode in filter(None, a.modes.split(",")):
        config = SamplingConfig(mode=mode, cfg=a.cfg, max_reasoning_tokens=a.max_reasoning)
        results = []
        t = timed({mode: lambda: results.__setitem__(slice(None), sample(model, prompts, config,
                                                                        seeds=list(range(a.batch_size))))},
                  a.device, a.repeats)[mode][0]
        text = sum(len(r.reasoning_ids) for r in results)
        images = sum(r.has_image for r in results)
        tokens = text + images * (model.spec.image.num_tokens + 1)
        print(f"{mode:8s} mode: {tokens / t:10.0f} tokens/s (text + BOI + image ids), {images / t:6.1f} images/s, "
              f"{images}/{a.batch_size} rows drew an image, mean reasoning {text / a.batch_size:.1f} tokens, {t:.3f} s/batch")


if __name__ == "__main__":
    main()

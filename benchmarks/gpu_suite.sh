#!/usr/bin/env bash
# Every GPU check of issue 16 in one run, sized to finish in under 8 minutes on one H100/H200:
# the CUDA tests, the sampler vs transformers at Janus-Pro-1B size (bf16, batch 16, 576 ids, CUDA
# graphs vs eager vs transformers, ms/step vs the memory-bandwidth floor), training MFU padded vs
# packed at 1B size (SDPA / FlexAttention / FlashAttention when installed, selective checkpointing,
# per-layer compile), a 7B-wide step (FSDP2 over all GPUs when there are several; on one GPU the
# 7B width with fewer layers) and the peak memory of that step, full vs LoRA; the VQAScore judge's
# throughput at Qwen2.5-VL-7B size (bf16, 384 px images, batched vs a per-image loop).
#
#   bash benchmarks/gpu_suite.sh [figures file]      # default: gpu_figures.txt
#
# Each check has its own time limit, so a slow or failing one leaves the others' figures.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=$(realpath -m "${1:-gpu_figures.txt}")
PY=${PYTHON:-python}
GPUS=$($PY -c "import torch; print(torch.cuda.device_count())")
LAYERS_7B=${LAYERS_7B:-16}     # one GPU: 7B width, this many of its 30 decoder layers
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONWARNINGS=ignore TOKENIZERS_PARALLELISM=false

check() {  # check <name> <seconds> <command...>
  local name=$1 limit=$2; shift 2
  echo "=== $name ($(date -u +%T), limit ${limit}s): $*" | tee -a "$OUT"
  local start=$SECONDS
  timeout "$limit" "$@" 2>&1 | grep -v -E "Warning|warnings.warn|forward_call|deprecated" | tee -a "$OUT"
  echo "--- $name: exit ${PIPESTATUS[0]} after $((SECONDS - start)) s" | tee -a "$OUT"
}

: > "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$OUT"
$PY -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__)" | tee -a "$OUT"

check "CUDA tests" 60 $PY -m pytest -q -x tests/test_generation_graphs.py tests/test_rewards_cuda.py
check "sampler 1B" 130 $PY benchmarks/generate.py --model configs/models/janus_pro_1b.yaml --device cuda \
  --dtype bfloat16 --batch-size 16 --repeats 2 --modes ""
check "MFU 1B" 90 $PY benchmarks/mfu.py --model configs/models/janus_pro_1b.yaml --batch-size 8 --steps 4 \
  --checkpointing selective --logits-chunk 4096
check "MFU 1B compiled" 70 $PY benchmarks/mfu.py --model configs/models/janus_pro_1b.yaml --batch-size 8 --steps 4 \
  --checkpointing selective --logits-chunk 4096 --compile-layers --arms sdpa:packed
if [ "$GPUS" -gt 1 ]; then
  check "7B FSDP2 x$GPUS" 90 torchrun --standalone --nproc-per-node "$GPUS" benchmarks/mfu.py \
    --model configs/models/janus_pro_7b.yaml --batch-size 4 --steps 3 --checkpointing selective --logits-chunk 4096 \
    --arms sdpa:packed
fi
check "7B-wide full (${LAYERS_7B} layers, 1 GPU)" 50 $PY benchmarks/mfu.py --model configs/models/janus_pro_7b.yaml \
  --num-layers "$LAYERS_7B" --batch-size 4 --steps 3 --checkpointing selective --logits-chunk 4096 --arms sdpa:packed
check "7B-wide LoRA r16 (${LAYERS_7B} layers, 1 GPU)" 50 $PY benchmarks/mfu.py --model configs/models/janus_pro_7b.yaml \
  --num-layers "$LAYERS_7B" --batch-size 4 --steps 3 --checkpointing selective --logits-chunk 4096 --arms sdpa:packed \
  --lora-rank 16
check "VQAScore judge Qwen2.5-VL-7B size" 150 $PY benchmarks/judge_throughput.py --size 7b --device cuda \
  --dtype bfloat16 --image-size 384 --images 64 --batch-size 16 --repeats 2
echo "figures in $OUT"

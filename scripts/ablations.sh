#!/usr/bin/env bash
# The ShapesWorld ablations (not in CI): loss weighting none/text/image/both with targeted data, and
# data strategy targeted/broad/benchmark_aligned with both weighted, 3 seeds each; then one table.
# About 8 runs x 3 seeds x the loop's wall time: run it overnight on a laptop.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
root=${ABLATION_OUT:-outputs/ablations}
run() { .venv/bin/python run.py loop --config configs/loop/shapes.yaml --seeds '[0,1,2]' --out "$root/$1-$2" \
          --fit.config "[configs/shapes/post_train.yaml, configs/shapes/weight_$1.yaml]" --target.strategy "$2"; }
for weighting in none text image both; do run "$weighting" targeted; done
for strategy in broad benchmark_aligned; do run both "$strategy"; done
.venv/bin/python -c "from pathlib import Path; from unigen.pipeline.report import ablation_table as t; \
print(t(Path('$root')))" | tee "$root/table.md"

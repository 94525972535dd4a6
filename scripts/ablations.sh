#!/usr/bin/env bash
# The ShapesWorld ablations (not in CI), 3 seeds each, every score with a paired bootstrap 95% interval:
#   weighting none / text / image / both on targeted data, data targeted / broad / benchmark_aligned with
#   both weighted, the reasoning ablation (the post-trained model drawing with vs without its reasoning)
#   and a second round. Runs that share settings share outputs through one cache (the base evaluations,
#   round 1's self-generated data), so the weighting variants only re-fit and re-evaluate.
# About 75 minutes on a quiet 2-core CPU; tables in $root/table.md (see docs/shapes.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
root=${ABLATION_OUT:-outputs/ablations}
run() { name=$1; shift; .venv/bin/python run.py loop --config configs/loop/shapes.yaml --seeds '[0,1,2]' \
          --out "$root/$name" --cache "$root/cache" "$@"; }
run both-targeted --weighting both --strategy targeted --post_modes '[unified, direct]'
for weighting in none text image; do run "$weighting-targeted" --weighting "$weighting" --strategy targeted; done
for strategy in broad benchmark_aligned; do run "both-$strategy" --weighting both --strategy "$strategy"; done
.venv/bin/python -c "from pathlib import Path; from unigen.worlds.shapes.report import ablation_table as t; \
print(t(Path('$root')))" | tee "$root/table.md"
cp "$root/both-targeted/report.md" "$root/both-targeted/report-1-round.md"
# a second round on the main run (round 1 reused; the ablation table above reads round 1)
run both-targeted --weighting both --strategy targeted --post_modes '[unified, direct]' --rounds 2

#!/usr/bin/env bash
# The ShapesWorld ablations (not in CI), 3 seeds each, every score with a paired bootstrap 95% interval:
#   weighting none / text / image / both on targeted data, data targeted / broad / benchmark_aligned with
#   both weighted, the reasoning ablation (the post-trained model drawing with vs without its reasoning,
#   and a model fitted on the same data without reasoning, `direct` mode)
#   and a second round. One shared folder holds the base evaluations and round 1's data, so the
#   weighting variants only re-fit and re-evaluate (and choose the fitted model's guidance scale). About
#   80 minutes on a quiet 2-core CPU; tables in
#   $root/table.md and $root/both-targeted/report.md (see docs/shapes-history.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
root=${ABLATION_OUT:-outputs/ablations}
run() { name=$1; shift; .venv/bin/python run.py loop --config configs/loop/shapes.yaml --seeds '[0,1,2]' \
          --out "$root/$name" --share "$root/share" "$@"; }
weights() { echo "[configs/shapes/post_train.yaml, configs/shapes/weight_$1.yaml]"; }
run both-targeted --post_modes '[unified, direct]'
for weighting in none text image; do run "$weighting-targeted" --fit.config "$(weights "$weighting")"; done
for strategy in broad benchmark_aligned; do run "both-$strategy" --target.strategy "$strategy"; done
# the reasoning ablation's fair arm: the same data fitted and evaluated without reasoning (direct mode)
run both-targeted-direct --fit.config "[configs/shapes/post_train.yaml, configs/shapes/weight_both.yaml, configs/shapes/mode_direct.yaml]" \
    --post_modes '[direct]'
.venv/bin/python -c "from pathlib import Path; from unigen.pipeline.report.tables import ablation_table as t; \
print(t(Path('$root')))" | tee "$root/table.md"
cp "$root/both-targeted/report.md" "$root/both-targeted/report-1-round.md"
# a second round on the main run (round 1 reused; the ablation table above reads round 1)
run both-targeted --post_modes '[unified, direct]' --rounds 2

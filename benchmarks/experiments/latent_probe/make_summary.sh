#!/bin/bash
# python summarise.py on every result file -> results/summary.md
cd "$(dirname "$0")"
{
for f in amort_relu_N0 amort_synthall_N100 amort_synthall_N300 scratch_h16_N300 scratch_h16_N1000 \
         calib_scratch tune_refine_lr0.01 tune_refine_lr0.03 tune_refine_lr0.1 tune_refine_lr0.2 \
         tune_refine_lr0.1_synthall tune_pretrained0_synthall tune_scratch_h32_100 \
         tune_scratch_h16_lr0.05 tune_scratch_h16_lr0.15 siren_h15_w30 siren_h15_w5 siren_h15_w5_more \
         relu_h15_coords siren_h16_w5_nocoords pretrained0_synthall_N300 amort_bias_N100; do
  [ -f results/$f.json ] || continue
  echo; echo "### $f"; echo '```'; python -c "import json;print(json.load(open('results/$f.json'))['args'])"; echo '```'
  python summarise.py results/$f.json 2>/dev/null
done
} > results/summary.md

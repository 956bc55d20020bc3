#!/bin/bash
# replaces the tail of stageB2 (killed after its scratch_h16_N1000 run started)
cd "$(dirname "$0")"
while kill -0 22239 2>/dev/null; do sleep 3; done
python fit.py --init scratch --hidden 15 --act sine --coords --w0 5 --imgs 24 8 0 --lams 3e-4 --steps 300 --out siren_h15_w5_more.json
python fit.py --init scratch --hidden 15 --coords --imgs 16 24 --lams 3e-4 --steps 300 --out relu_h15_coords.json
python fit.py --init scratch --hidden 16 --act sine --w0 5 --imgs 16 --lams 3e-4 --steps 300 --out siren_h16_w5_nocoords.json
python fit.py --init pretrained0 --ckpt ckpt_relu.pt --imgs 16 24 --lams 5e-4 --lis 1 --steps 300 --lr-lat 0.05 --train-synth all --out pretrained0_synthall_N300.json
python fit.py --init amortised --ckpt ckpt_relu.pt --imgs 16 24 --lams 5e-4 --lis 1 --steps 100 --lr-lat 0.05 --train-synth bias --out amort_bias_N100.json
echo STAGE_C_DONE

#!/bin/bash
cd "$(dirname "$0")"
while pgrep -f "stageB1.sh" >/dev/null; do sleep 3; done
A="--init amortised --ckpt ckpt_relu.pt --imgs 0 8 16 24 --lams 1.5e-4 5e-4 1.5e-3 5e-3"
python fit.py $A --steps 100 --lr-lat 0.05 --train-synth all --out amort_synthall_N100.json
python fit.py $A --steps 300 --lr-lat 0.05 --train-synth all --out amort_synthall_N300.json
S="--init scratch --hidden 16 --imgs 0 8 16 24 --lams 5e-5 1.5e-4 5e-4 1.5e-3 --lr-lat 0.05"
python fit.py $S --steps 300 --out scratch_h16_N300.json
python fit.py --init scratch --hidden 15 --act sine --coords --w0 30 --imgs 16 --lams 3e-4 --steps 300 --out siren_h15_w30.json
python fit.py --init scratch --hidden 15 --act sine --coords --w0 5 --imgs 16 --lams 3e-4 --steps 300 --out siren_h15_w5.json
python fit.py --init scratch --hidden 16 --imgs 16 24 --lams 5e-4 --steps 1000 --out scratch_h16_N1000.json
python fit.py --init pretrained0 --ckpt ckpt_relu.pt --imgs 16 24 --lams 5e-4 1.5e-3 --lis 1 2 --steps 300 --lr-lat 0.05 --train-synth all --out pretrained0_synthall_N300.json
python fit.py --init amortised --ckpt ckpt_relu.pt --imgs 16 24 --lams 5e-4 --lis 1 --steps 100 --lr-lat 0.05 --train-synth bias --out amort_bias_N100.json
python fit.py $S --steps 100 --out scratch_h16_N100.json
echo STAGE_B2_DONE

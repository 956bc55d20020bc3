#!/bin/bash
cd "$(dirname "$0")"
while pgrep -f "stageA.sh" >/dev/null; do sleep 3; done
python fit.py --init amortised --ckpt ckpt_relu.pt --imgs 16 --lams 5e-4 --lis 1 --steps 100 --lr-lat 0.1 --train-synth all --lr-net 5e-3 --out tune_refine_lr0.1_synthall.json
python fit.py --init amortised --ckpt ckpt_relu.pt --imgs 16 --lams 5e-4 --lis 1 --steps 100 --lr-lat 0.2 --out tune_refine_lr0.2.json
python fit.py --init pretrained0 --ckpt ckpt_relu.pt --imgs 16 --lams 5e-4 --lis 1 --steps 100 --lr-lat 0.1 --train-synth all --lr-net 5e-3 --out tune_pretrained0_synthall.json
python fit.py --init scratch --hidden 32 --arm-hidden 16 --imgs 16 --lams 5e-4 --steps 100 --lr-lat 0.1 --out tune_scratch_h32_100.json
echo STAGE_B1_DONE

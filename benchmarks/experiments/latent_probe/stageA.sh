#!/bin/bash
# runs after the amortised training; one process at a time
cd "$(dirname "$0")"
while pgrep -f "train_amortised.py --minutes 33" >/dev/null; do sleep 5; done
python decode_time.py ckpt_relu.pt > results/decode_time_relu.txt 2>&1
python fit.py --init amortised --ckpt ckpt_relu.pt --imgs 0 8 16 24 --lams 1.5e-4 5e-4 1.5e-3 5e-3 --steps 0 --out amort_relu_N0.json
for lr in 0.01 0.03 0.1; do
python fit.py --init amortised --ckpt ckpt_relu.pt --imgs 16 --lams 5e-4 --lis 1 --steps 100 --lr-lat $lr --out tune_refine_lr$lr.json
done
for lr in 0.05 0.15; do
python fit.py --init scratch --hidden 16 --imgs 16 --lams 3e-4 --steps 300 --lr-lat $lr --out tune_scratch_h16_lr$lr.json
done
echo STAGE_A_DONE

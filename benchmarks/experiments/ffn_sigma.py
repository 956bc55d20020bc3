"""FFN Fourier-feature scale for the paper experiments' cpu scale (README: Appendix B).

    OMP_NUM_THREADS=1 python benchmarks/experiments/ffn_sigma.py

Result (no results file): the numbers quoted in README.md's "FFN's sigma" paragraph (lr
1e-2: sigma 1: 34.59, 2: 36.41, 4: 34.91, 10: 33.90 dB), which chose sigma 2 for
`benchmarks/paper.py --family ffn`.

100-step scratch fits of 32 training crops (32x32, endless-sky) per sigma and learning rate;
prints the mean PSNR at lr 1e-4, 1e-3, 1e-2. SIREN first, for reference.
"""
import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root

from inrcodec.config import Arch, FitConfig  # noqa: E402
from inrcodec.model.shared_model import scratch_model  # noqa: E402
from inrcodec.training.baselines import evaluate  # noqa: E402
from inrcodec.training.train import signals  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sigmas", default="1,2,4,10", help="FFN sigmas (comma list)")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    tr, va = signals("endless-sky", 32, 64, 16, whole_image=False, seed=0,
                     crop_scale=(0.5, 1.0))
    sig_ = tr[:32]
    for fam, sigs in (("siren", [0]), ("ffn", [float(x) for x in args.sigmas.split(",")])):
        for sig in sigs:
            arch = Arch(family=fam, width=32, depth=4, ffn_sigma=float(sig or 10))
            m = scratch_model(arch, 32, n_levels=1)
            out = []
            for lr in [1e-4, 1e-3, 1e-2]:
                r = evaluate("scratch", sig_, model=m, cfg=FitConfig(steps=args.steps, lr=lr),
                             seed=0)
                out.append(round(r.mean, 2))
            print(fam, sig, out, flush=True)


if __name__ == "__main__":
    main()

import torch; torch.set_num_threads(1)
from inrcodec import Arch, scratch_model
from inrcodec.train import signals
from inrcodec.meta import validation_psnr
from inrcodec.tiling import tile_coords
tr, va = signals("endless-sky", 64, 20000, 32, whole_image=False)
m = scratch_model(Arch(width=64, depth=4, w0=60.0), tile=64, n_levels=16)
for k in (0, 5, 9, 12, 15):
    print(k, round(m.ladder()[k]["density"], 3), round(validation_psnr(m.net(k), m.levels[k].theta0, tile_coords(64), va), 2), flush=True)

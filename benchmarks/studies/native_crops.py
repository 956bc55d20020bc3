"""The development photos at their native resolution: a 768x512 centre crop (512x768 for a
portrait) of each source photo large enough to give one, not downscaled. The development
set itself is downscaled 2x or more, which smooths away sensor and canvas texture; these
crops keep it (and the sources' own JPEG artifacts, which every codec then has to code).

    python benchmarks/studies/native_crops.py --out DIR     # writes DIR/<name>.png
    python benchmarks/bench.py run --codecs inrcodec --mode latent --qualities 5,30,55,80 \\
        --images DIR --threads 1 --out rd-inrcodec-native.json
    python benchmarks/bench.py run --codecs jpeg,webp,avif --images DIR --out-dir D
    python benchmarks/bench.py bd D/rd-avif.json rd-inrcodec-native.json --common-images

Result: benchmarks/results/native-crops-0.11/ (the inrcodec and classical runs on 9 of the 17
crops of the mate-backgrounds and palapeli photos; the 512x512 gnome faces have none) and
docs/latent-mode.md ("At native resolution").
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from inrcodec.training import data  # noqa: E402


def centre_crop(img, width: int, height: int):
    """The centre width x height (height x width if the photo is portrait) of a PIL image,
    or None if it is smaller."""
    if img.height > img.width:
        width, height = height, width
    if img.width < width or img.height < height:
        return None
    x, y = (img.width - width) // 2, (img.height - height) // 2
    return img.crop((x, y, x + width, y + height))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="folder for the crops (PNG)")
    ap.add_argument("--size", default="768x512", help="WxH of a landscape crop")
    ap.add_argument("--pick", type=int, help="only N of the photos that give a crop, spread "
                    "over them in order (default: all)")
    a = ap.parse_args(argv)
    w, h = (int(v) for v in a.size.split("x"))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    crops = []
    for src in data.dev_photos():
        img = data._open_rgb(src)
        crop = centre_crop(img, w, h)
        if crop is None:
            print(f"{src.name}: {img.width}x{img.height}, smaller than the crop: skipped",
                  file=sys.stderr)
            continue
        crops.append((f"{data._builder_of(src)}-{src.stem}.png", crop, img.size))
    if a.pick and a.pick < len(crops):
        k = len(crops) - 1
        crops = [crops[round(i * k / max(1, a.pick - 1))] for i in range(a.pick)]
    for name, crop, (iw, ih) in crops:
        crop.save(out / name)
        print(f"{name}: the centre {crop.width}x{crop.height} of {iw}x{ih}", file=sys.stderr)
    print(f"{len(crops)} crops in {out}")


if __name__ == "__main__":
    main()

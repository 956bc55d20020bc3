"""JPEG (Pillow/libjpeg-turbo, quality 5..95) RD points on the dev photos.
python jpeg_ref.py  -> results/jpeg.json"""
from common import dev_files, load, jpeg_curve, save_json
rows = {}
for i, f in enumerate(dev_files()):
    a, _ = load(f)
    rows[i] = [dict(bpp=r, psnr=p, q=q) for r, p, q in jpeg_curve(a)]
save_json("jpeg.json", rows)
print("done")

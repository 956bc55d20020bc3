"""Issue 35's parts, each added per image to 0.10's fit (Adam, unclipped) from the shipped
model with no retraining (a new part starts at the identity or at bilinear): which of
Cool-chic 5's parts pay in our 900 CPU steps before any is built into the format.

Parts ('+'-joined into a variant; 'base' is 0.10's fit): soap (SOAP for the synthesis,
codec/latent/optim.py), clip (gradient norm 0.1), gnoise (Cool-chic's lambda-dependent
Gaussian noise in the soft rounding), up (a learned x2 cascade per level: an 8-tap
symmetric separable transposed conv, init bilinear, and a 7-tap residual pre-filter, init
zero), conv (two 3x3 residual layers on the RGB output, init zero; its steps read every
pixel), sa (the latents start at an analysis network's prediction, `train-analysis`,
trained against the shipped synthesis and ARM, frozen). Bits are real: the latents coded
by the ARM, the synthesis packed as the codec packs it, the parts Laplace-coded per
tensor, each at its best step by D + lambda R, plus the header's 75 bytes.

    python benchmarks/studies/fit_parts.py run --variants base,soap+clip --images dev:4 \\
        --qualities 20,45,70 --out R.json      # --steps N --tag N: base@N at N steps
    python benchmarks/studies/fit_parts.py train-analysis --steps 3000 --out A.safetensors
    python benchmarks/studies/fit_parts.py report R.json ... [--out S.json]

Result (issue 35, dev:4, qualities 20/45/70, one thread; BD-rate against base and fit time
as a ratio to base's): benchmarks/results/fit-parts-0.11.json and docs/latent-mode.md
("What each part is worth").
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import bd, harness  # noqa: E402
from benchmarks.harness.images import load_images  # noqa: E402
from inrcodec.codec import prior  # noqa: E402
from inrcodec.codec.latent import arm, rate, synthesis  # noqa: E402
from inrcodec.codec.latent.config import LatentFit, latent_lambda  # noqa: E402
from inrcodec.codec.latent.fit import (LIM, Start, phases, quantised, softround,  # noqa: E402
                                       uniform_noise)
from inrcodec.codec.latent.format import pack_synthesis, unpack_synthesis  # noqa: E402
from inrcodec.codec.latent.grids import coordinates, features, features_lattice, lattice  # noqa
from inrcodec.codec.latent.layout import grid_shapes  # noqa: E402
from inrcodec.codec.latent.model import load_latent_model  # noqa: E402
from inrcodec.codec.latent.optim import Nets  # noqa: E402
from inrcodec.codec.schedule import cosine_decay  # noqa: E402
from inrcodec.metrics import psnr as psnr_u8  # noqa: E402

PARTS = ("soap", "clip", "gnoise", "up", "conv", "sa")
BILINEAR8 = [0.0, 0.0, 0.25, 0.75]  # half of a symmetric 8-tap x2 kernel: bilinear
HEADER_BYTES = 75
MODEL = ROOT / "inrcodec" / "models" / "latent-0.11.safetensors"  # 0.11's: what was measured


def _sym(h: torch.Tensor) -> torch.Tensor:
    return torch.cat([h, h.flip(0)])


def up2(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """(C, h, w) -> (C, 2h, 2w): separable transposed conv, stride 2, taps _sym(w) (8),
    borders replicated (Cool-chic's layout)."""
    k = w.numel() * 2
    p = k // 2
    crop = 2 * p - 1 + k // 2
    taps = _sym(w)
    c, h, ww = x.shape
    x = F.pad(x[None], (p, p, p, p), mode="replicate")[0]
    y = F.conv_transpose2d(x[:, None], taps.view(1, 1, k, 1), stride=(2, 1))
    y = F.conv_transpose2d(y, taps.view(1, 1, 1, k), stride=(1, 2))[:, 0]
    return y[:, crop:crop + 2 * h, crop:crop + 2 * ww]


def prefilter(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """(h, w) -> x + a separable symmetric 7-tap conv of x (zero padding)."""
    taps = torch.cat([w, w[:-1].flip(0)])
    k = taps.numel()
    y = F.conv2d(x[None, None], taps.view(1, 1, k, 1), padding=(k // 2, 0))
    y = F.conv2d(y, taps.view(1, 1, 1, k), padding=(0, k // 2))
    return x + y[0, 0]


def cascade(q: list[torch.Tensor], ups: list[torch.Tensor], pres: list[torch.Tensor]
            ) -> torch.Tensor:
    """The grids (finest first) -> (levels, H, W): from the coarsest, upsample what is
    there, crop, stack the next (pre-filtered) grid on top."""
    x = q[-1][None]
    for k in range(len(q) - 2, -1, -1):
        h, w = q[k].shape
        x = up2(x, ups[k])[:, :h, :w]
        x = torch.cat([prefilter(q[k], pres[k])[None], x])
    return x


def conv_refine(rgb: torch.Tensor, convs) -> torch.Tensor:
    """(3, H, W) -> two 3x3 residual layers (replicate padding), ReLU after the first."""
    x = rgb
    for i, (w, b) in enumerate(convs):
        x = x + F.conv2d(F.pad(x[None], (1, 1, 1, 1), mode="replicate"), w, b)[0]
        if i == 0:
            x = torch.relu(x)
    return x


class Parts:
    """An image's parameters of the new parts, and their code."""

    def __init__(self, levels: int, use_up: bool, use_conv: bool):
        n = levels - 1 if use_up else 0
        self.ups = [torch.tensor(BILINEAR8, requires_grad=True) for _ in range(n)]
        self.pres = [torch.zeros(4, requires_grad=True) for _ in range(n)]
        self.convs = [(torch.zeros(3, 3, 3, 3, requires_grad=True),
                       torch.zeros(3, requires_grad=True)) for _ in range(2)] if use_conv else []

    def params(self) -> list[torch.Tensor]:
        return self.ups + self.pres + [t for wb in self.convs for t in wb]

    def coded(self, k: int) -> tuple[int, "Parts"]:
        """(bytes, the decoded copy): each tensor's deltas from its init at step 2^-k."""
        if not self.params():
            return 0, self
        inits = ([torch.tensor(BILINEAR8)] * len(self.ups) + [torch.zeros(4)] * len(self.pres)
                 + [torch.zeros_like(t) for wb in self.convs for t in wb])
        qs, laws, vals = [], [], []
        for p, i in zip(self.params(), inits):
            q = np.round((p.detach() - i).numpy().astype(np.float64) * (1 << k)).astype(np.int64)
            q = np.clip(q, -prior.MAX_QMAX, prior.MAX_QMAX)
            qs.append(q.ravel())
            laws.append(prior.fit_m(q))
            vals.append((i + torch.from_numpy(q / (1 << k)).float()).reshape(p.shape))
        n = len(prior.encode_tensors(qs, laws)) + 5 * len(qs)
        out, nu = Parts(0, False, False), len(self.ups)
        out.ups, out.pres, rest = vals[:nu], vals[nu:2 * nu], vals[2 * nu:]
        out.convs = [(rest[2 * j], rest[2 * j + 1]) for j in range(len(rest) // 2)]
        return n, out


def render(arch, theta, q, parts: Parts, h: int, w: int) -> torch.Tensor:
    """(3, H, W), every pixel, before clamping."""
    if parts.ups:
        feats = cascade(q, parts.ups, parts.pres)
        if arch.coords:
            feats = torch.cat([feats, coordinates(h, w)])
        feats = feats.reshape(arch.inputs, -1)
    else:
        feats = features(arch, q, h, w)
    rgb = synthesis.synthesize_cf(arch, theta, feats).reshape(3, h, w)
    return conv_refine(rgb, parts.convs) if parts.convs else rgb


def analysis_init(levels: int, width: int = 16, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)

    def conv(o, i, k=3):
        return (torch.rand(o, i, k, k, generator=g) * 2 - 1) / math.sqrt(i * k * k)
    p = {"stem.w": conv(width, 4), "stem.b": torch.zeros(width)}
    for k in range(levels):
        if k:
            p[f"down{k}.w"], p[f"down{k}.b"] = conv(width, width), torch.zeros(width)
        p[f"head{k}.w"], p[f"head{k}.b"] = conv(1, width) * 0.1, torch.zeros(1)
    p["gain.a"], p["gain.b"] = torch.zeros(levels), torch.zeros(levels)
    return p


def analyse(p: dict, img: torch.Tensor, quality: torch.Tensor, levels: int
            ) -> list[torch.Tensor]:
    """img (B, 3, H, W) in [0, 1], quality (B,) -> [(B, h_k, w_k)] latent grids: a strided
    conv pyramid, one head per grid, a gain per grid that depends on the quality."""
    b = img.shape[0]
    qn = (quality.view(b, 1, 1, 1) - 50.0) / 50.0
    x = torch.cat([img - 0.5, qn.expand(b, 1, *img.shape[-2:])], 1)
    h = F.gelu(F.conv2d(x, p["stem.w"], p["stem.b"], padding=1))
    out = []
    for k in range(levels):
        if k:
            h = F.gelu(F.conv2d(h, p[f"down{k}.w"], p[f"down{k}.b"], stride=2, padding=1))
        y = F.conv2d(h, p[f"head{k}.w"], p[f"head{k}.b"], padding=1)[:, 0]
        out.append(y * torch.exp(p["gain.a"][k] + p["gain.b"][k] * qn.view(b, 1, 1)) * 4.0)
    return out


def train_analysis(steps: int, out: str, crop: int = 128, batch: int = 8, seed: int = 0,
                   lr: float = 2e-3) -> None:
    """D + lambda R of the analysis' soft-rounded prediction through the shipped model's
    frozen synthesis (level 0) and ARM, lambda drawn per crop, on endless-sky crops."""
    from safetensors.torch import save_file

    from inrcodec.training.data import image_paths, random_crops
    from inrcodec.training.latent_train import _upsample_batch
    from inrcodec.training.train import split_photos
    model = load_latent_model(MODEL)
    arch, theta = model.arch, torch.from_numpy(model.thetas[0])
    armp = [torch.from_numpy(a).float() for a in arm.ArmParams(*model.arm).to_float()]
    photos, _ = split_photos(image_paths("endless-sky"))
    p = {k: v.requires_grad_(True) for k, v in analysis_init(arch.levels, seed=seed).items()}
    opt = torch.optim.Adam(p.values(), lr=lr)
    rng = np.random.default_rng(seed)
    coords, n_px = coordinates(crop, crop).reshape(2, -1), crop * crop
    buf, t0, ema = [], time.time(), None
    for step in range(steps):
        if not buf:
            buf = list(random_crops(photos, crop, 256, seed=int(rng.integers(1 << 31)),
                                    scale_range=(0.25, 0.75)))
        imgs = torch.from_numpy(np.stack([buf.pop() for _ in range(min(batch, len(buf)))]))
        bsz = imgs.shape[0]
        qs = torch.from_numpy(rng.uniform(5, 90, bsz)).float()
        lam = torch.tensor([latent_lambda(float(q)) for q in qs])
        t = 0.1 + 0.2 * (1 - step / steps)
        q = [softround(softround(g, t) + (torch.rand_like(g) - 0.5), t)
             for g in analyse(p, imgs.permute(0, 3, 1, 2), qs, arch.levels)]
        up = _upsample_batch(arch, q, crop, crop).reshape(bsz, arch.levels, -1)
        feats = torch.cat([up, coords.expand(bsz, -1, -1)], 1) if arch.coords else up
        pix = torch.randint(0, n_px, (n_px // 2,))
        xx = feats[:, :, pix].permute(0, 2, 1).reshape(-1, arch.inputs)
        y = imgs.reshape(bsz, -1, 3)[:, pix].reshape(-1, 3)
        err = (synthesis.synthesize(arch, theta, xx) - y).square().reshape(bsz, -1).mean(1)
        bits = torch.zeros(bsz)
        for g in q:
            mu, sc = arm.predict_float(armp, arm.context_float(g))
            bits = bits + prior.rate_bits(g.reshape(bsz, -1), sc, mu).sum(1)
        loss = ((err + lam * bits / n_px) / lam).mean()  # each crop's J in its lambda's units
        opt.zero_grad(set_to_none=True)
        loss.backward()
        for g in opt.param_groups:
            g["lr"] = lr * (0.5 * (1 + math.cos(math.pi * step / steps)) * 0.95 + 0.05)
        opt.step()
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        if step % 100 == 0 or step == steps - 1:
            print(f"step {step} loss/lam {ema:.1f} psnr {-10 * math.log10(err.mean().item()):.2f}"
                  f" bpp {bits.mean().item() / n_px:.3f} {time.time() - t0:.0f} s", flush=True)
    save_file({k: v.detach().contiguous() for k, v in p.items()}, out)


def predict(p: dict, img: np.ndarray, quality: float, levels: int) -> list[torch.Tensor]:
    x = torch.from_numpy(img.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    with torch.no_grad():
        lat = analyse(p, x, torch.tensor([float(quality)]), levels)
    return [g[0, :s[0], :s[1]].contiguous()
            for g, s in zip(lat, grid_shapes(*img.shape[:2], levels))]


def fit_variant(img: np.ndarray, model, fs: LatentFit, on: set[str], quality: float,
                analysis: dict | None):
    """0.10's fit loop (codec/latent/fit.py without its steer and straight-through phase)
    with the parts in `on`."""
    arch = model.arch
    start = Start.of(model, model.default_level)
    h, w = img.shape[:2]
    full = torch.from_numpy(img.astype(np.float32) / 255.0).permute(2, 0, 1)
    order = [p for p in phases(fs.stride) if p[0] < h and p[1] < w]
    targets = [full[(slice(None),) + lattice(h, w, fs.stride, p)].reshape(3, -1).contiguous()
               for p in order]
    shapes = grid_shapes(h, w, arch.levels)
    canvas = rate.Canvas(shapes, None, fs.seed)
    if "sa" in on:
        lat = [g.clone().requires_grad_(True) for g in predict(analysis, img, quality,
                                                               arch.levels)]
    else:
        lat = [torch.zeros(s, requires_grad=True) for s in shapes]
    armp = [torch.from_numpy(a).float() for a in start.arm.to_float()]
    parts = Parts(arch.levels, "up" in on, "conv" in on)
    nets = Nets(arch, start.theta.clone(), start.mask.float(), parts.params(), fs)
    opt = torch.optim.Adam([{"params": lat[:1], "lr": fs.lr_latent},
                            {"params": lat[1:], "lr": fs.lr_latent * fs.coarse_lr_factor}],
                           foreach=True)
    base = [g["lr"] for g in opt.param_groups]
    sizes = [a * b for a, b in shapes]
    sigma0 = (-0.432 * math.log10(fs.lam) + 0.747) / 10 if "gnoise" in on else None
    with rate.threads(torch.get_num_threads()):
        for t in range(fs.steps):
            f = cosine_decay(t, fs.steps, 0.02)
            for g, b in zip(opt.param_groups, base):
                g["lr"] = b * f
            u = uniform_noise(sum(sizes), fs.seed, t)
            if sigma0 is not None:  # Gaussian, sigma falling to 0.7 sigma0 (Cool-chic's)
                gen = torch.Generator().manual_seed(fs.seed * 100003 + t)
                u = torch.randn(sum(sizes), generator=gen) * (sigma0 * (1 - 0.3 * t / fs.steps))
            q = quantised(lat, fs, t, u.split(sizes))
            theta, k = nets.theta(), t % len(order)
            if parts.convs:
                mse = (render(arch, theta, q, parts, h, w) - full).square().mean()
            else:
                if parts.ups:
                    rows, cols = lattice(h, w, fs.stride, order[k])
                    x = cascade(q, parts.ups, parts.pres)[:, rows, cols]
                    if arch.coords:
                        x = torch.cat([x, coordinates(h, w)[:, rows, cols]])
                    x = x.reshape(arch.inputs, -1)
                else:
                    x = features_lattice(arch, q, h, w, fs.stride, order[k])
                mse = synthesis.mse(arch, theta, x, targets[k])
            loss = mse + fs.lam * rate.bits(canvas, q, armp, False, fs.rate_sample) / (h * w)
            opt.zero_grad(set_to_none=True)
            nets.zero_grad()
            loss.backward()
            opt.step()
            nets.step(f)
    ints = [np.clip(np.round(v.detach().numpy()), -LIM, LIM).astype(np.int64) for v in lat]
    return ints, nets.values().numpy().astype(np.float32), parts, start


def evaluate(img, model, ints, theta, parts: Parts, start, lam) -> tuple[int, float]:
    """(bytes, PSNR) of the coded choice of least D + lambda R."""
    arch = model.arch
    h, w = img.shape[:2]
    lat_bytes = len(arm.encode_section(ints, start.arm))
    base, mask = start.theta.numpy().astype(np.float32), start.mask.numpy()
    qg = [torch.from_numpy(g.astype(np.float32)) for g in ints]
    ref = img.astype(np.float64)
    synth_opts = [b""] + [pack_synthesis(theta, arch, k, base, mask) for k in range(4, 13)]
    part_opts = [parts.coded(k) for k in range(5, 15)] if parts.params() else [(0, parts)]

    def measure(sy, pp):
        th = torch.from_numpy(unpack_synthesis(sy, arch, base, mask))
        with torch.no_grad():
            rgb = render(arch, th, qg, pp, h, w).clamp(0, 1)
        out = np.round(rgb.permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        return float(np.mean((out.astype(np.float64) - ref) ** 2)) / 255 ** 2, out
    fine = synth_opts[-1]  # the parts' step is chosen against the finely coded synthesis
    best_p = min(part_opts, key=lambda o: measure(fine, o[1])[0] + lam * 8 * o[0] / (h * w))
    scored = []
    for sy in synth_opts:
        d, out = measure(sy, best_p[1])
        n = lat_bytes + len(sy) + best_p[0] + HEADER_BYTES
        scored.append((d + lam * 8 * n / (h * w), n, out))
    _, n, out = min(scored, key=lambda s: s[0])
    return n, psnr_u8(out, img)


def run(a) -> None:
    torch.set_num_threads(a.threads)
    model = load_latent_model(MODEL)
    analysis = None
    if a.analysis:
        from safetensors.torch import load_file
        analysis = load_file(a.analysis)
    out = Path(a.out)
    rows = json.loads(out.read_text())["rows"] if out.exists() else []
    done = {(r["image"], r["quality"], r["variant"]) for r in rows}
    tag = f"@{a.tag}" if a.tag else ""
    command = harness.command_line(__file__, sys.argv[1:])
    for name, img in load_images(a.images):
        for q in [float(x) for x in a.qualities.split(",")]:
            for v in a.variants.split(","):
                if (name, q, v + tag) in done:
                    continue
                on = set(v.split("+")) - {"base"}
                if on - set(PARTS) or ("sa" in on and analysis is None):
                    raise SystemExit(f"variant {v!r}: parts are {', '.join(PARTS)} "
                                     "('sa' needs --analysis)")
                fs = LatentFit(steps=a.steps, lam=latent_lambda(q),
                               net_optimizer="soap" if "soap" in on else "adam",
                               clip=0.1 if "clip" in on else 0.0)
                t0 = time.perf_counter()
                ints, theta, parts, start = fit_variant(img, model, fs, on, q, analysis)
                secs = time.perf_counter() - t0
                n, p = evaluate(img, model, ints, theta, parts, start, fs.lam)
                bpp = 8 * n / (img.shape[0] * img.shape[1])
                rows.append({"image": name, "quality": q, "variant": v + tag, "bytes": n,
                             "bpp": bpp, "psnr": p, "seconds": secs})
                print(f"{name} q{q:g} {v}{tag}: {bpp:.4f} bpp {p:.2f} dB {secs:.1f} s", flush=True)
                out.write_text(json.dumps({"command": command, "rows": rows}, indent=1))
    report(rows)


def report(rows: list[dict]) -> dict:
    """BD-rate (pchip) of each variant against base, over the photos' mean curve and per
    photo, and its fit time as a ratio to base's."""
    variants = sorted({r["variant"] for r in rows})
    images = sorted({r["image"] for r in rows})
    qs = sorted({r["quality"] for r in rows})

    def curve(v, imgs):
        pts = [[r for r in rows if r["variant"] == v and r["quality"] == q and r["image"] in imgs]
               for q in qs]
        pts = [p for p in pts if len(p) == len(imgs)]
        return (np.array([np.mean([r["bpp"] for r in p]) for p in pts]),
                np.array([np.mean([r["psnr"] for r in p]) for p in pts]))

    def bdr(v, imgs):
        try:
            return bd.bd_rate(*curve("base", imgs), *curve(v, imgs), "pchip")
        except bd.BDError:
            return None
    out = {}
    for v in variants:
        if v == "base" or "base" not in variants:
            continue
        done = [im for im in images if len([r for r in rows if r["variant"] == v
                                            and r["image"] == im]) == len(qs)]
        secs = np.mean([r["seconds"] for r in rows if r["variant"] == v]) / np.mean(
            [r["seconds"] for r in rows if r["variant"] == "base"])
        out[v] = {"bd_rate": bdr(v, done), "per_image": {im: bdr(v, [im]) for im in done},
                  "time_ratio": float(secs)}
        per = ", ".join("n/a" if x is None else f"{x:+.1f}" for x in out[v]["per_image"].values())
        m = out[v]["bd_rate"]
        print(f"{v}: BD-rate against base {'n/a' if m is None else f'{m:+.2f}%'} over "
              f"{len(done)} photos (each: {per}), time x{secs:.2f}")
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="fit and code each photo, quality and variant")
    r.add_argument("--images", default="dev:4")
    r.add_argument("--qualities", default="20,45,70")
    r.add_argument("--variants", default="base,soap+clip")
    r.add_argument("--steps", type=int, default=900)
    r.add_argument("--threads", type=int, default=1)
    r.add_argument("--analysis", help="the analysis network (train-analysis) for 'sa'")
    r.add_argument("--tag", help="recorded as VARIANT@TAG (e.g. base@1170 for a run with "
                   "--steps 1170, compared with base at equal time)")
    r.add_argument("--out", required=True, help="results JSON (resumed if it exists)")
    t = sub.add_parser("train-analysis", help="train the semi-amortised start's network")
    t.add_argument("--steps", type=int, default=3000)
    t.add_argument("--crop", type=int, default=128)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--out", required=True, help="safetensors file")
    p = sub.add_parser("report", help="BD-rates of results files' rows (merged)")
    p.add_argument("results", nargs="+")
    p.add_argument("--out", help="write the summary as JSON here")
    a = ap.parse_args(argv)
    if a.cmd == "run":
        run(a)
    elif a.cmd == "train-analysis":
        torch.set_num_threads(a.threads)
        train_analysis(a.steps, a.out, crop=a.crop)
    else:
        files = [json.loads(Path(f).read_text()) for f in a.results]
        rows = {}  # a row made twice (a base re-run to resume against) counts once
        for d in files:
            for r in d["rows"]:
                rows.setdefault((r["image"], r["quality"], r["variant"]), r)
        res = report(list(rows.values()))
        if a.out:
            Path(a.out).write_text(json.dumps({
                "commands": [harness.portable_command(d["command"]) for d in files],
                "command": harness.command_line(__file__, sys.argv[1:]),
                "variants": res}, indent=1) + "\n")


if __name__ == "__main__":
    main()

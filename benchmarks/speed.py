"""Speed: fit-step time and GFLOP/s per ladder level (masked dense vs compact), encode and
decode time, dataset throughput, peak memory; bf16 autocast and torch.compile.

    python benchmarks/speed.py --out benchmarks/results/speed-cpu.json

Everything is measured in one run, as ratios where the machine is shared: the matmul
ceiling (a 2048x2048 float32 matmul, the same thread count) is measured at the start, the
middle and the end; dense and compact steps are interleaved, repetition by repetition;
the before/after encodes alternate. Each full encode runs in a fresh child process so its
peak resident memory (ru_maxrss, minus the child's resident size just before encoding) is
its own. On a GPU (--device cuda, or auto with one present) times are taken after
torch.cuda.synchronize and peak memory is torch.cuda.max_memory_allocated.

Sections (--sections): ceiling is always measured; steps (every level in --levels),
encode (--encode-levels, before = dense, after = the automatic choice, and compact where
auto keeps dense), decode, dataset (--dataset-images crops of --crop pixels through
encode_dataset), amp (bf16 autocast: step time and the decoded PSNR of a full encode),
compile (torch.compile: first-call time and step time), latent (the latent mode on a
768x512 photo at the default effort: encode and decode time, the synthesis's MACs per pixel
at every level, and a steps curve of the shipped latent model against the same
architecture with a random synthesis init, the shipped entropy model kept:
`--latent-steps`), latent-step (one step of the latent fit part by part, each next to its
floor at the ceiling measured in the same run).

    python benchmarks/speed.py --sections latent --threads 2 --out benchmarks/results/speed-latent.json
FLOPs counted: matmul multiply-adds only, 2 per MAC forward and 4 backward (6 x MACs x
pixels per step), executed by the path measured (the compact path executes fewer).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import resource
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import inrcodec
from inrcodec.model import accel
from inrcodec.config import FitConfig
from inrcodec.training.data import build_dev_set, cache_dir
from inrcodec.model.sparse import compute_path, plan_for
from inrcodec.codec.weights.tiles import image_to_tiles, tile_coords


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def ceiling(dev, n=2048, reps=5) -> float:
    """Best GFLOP/s of an n x n float32 matmul."""
    a = torch.randn(n, n, device=dev)
    b = torch.randn(n, n, device=dev)
    (a @ b).sum().item()
    best = float("inf")
    for _ in range(reps):
        sync(dev)
        t = time.perf_counter()
        c = a @ b
        sync(dev)
        best = min(best, time.perf_counter() - t)
        del c
    return 2 * n ** 3 / best / 1e9


def photos(n: int) -> list[Path]:
    paths = sorted(build_dev_set(cache_dir() / "devset"))
    land = [p for p in paths if Image.open(p).size == (768, 512)]
    return land[:n]


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# -- fit steps ---------------------------------------------------------------------------------
class Stepper:
    """One Adam step exactly as fit() takes it (passes of chunk_pixels, accumulated)."""

    def __init__(self, net, theta0, targets, weights, dev, path, chunk_pixels):
        self.net, self.dev, self.path = net, dev, path
        self.coords = tile_coords(int(round(targets.shape[1] ** 0.5))).to(dev)
        self.tgt, self.wts = targets.to(dev), weights.to(dev)
        self.theta = theta0.to(dev).reshape(1, -1).repeat(targets.shape[0], 1).requires_grad_(True)
        self.opt = torch.optim.Adam([self.theta], lr=1e-4)
        self.per_pass = max(1, chunk_pixels // targets.shape[1])
        with compute_path(path):
            self.losses = accel.loss_function(net, dev)

    def step(self) -> float:
        with compute_path(self.path):
            sync(self.dev)
            t = time.perf_counter()
            self.opt.zero_grad(set_to_none=True)
            for a in range(0, self.tgt.shape[0], self.per_pass):
                with accel.autocast(self.dev):
                    part = self.losses(self.theta[a:a + self.per_pass], self.coords,
                                       self.tgt[a:a + self.per_pass],
                                       self.wts[a:a + self.per_pass]).sum()
                part.backward()
            self.opt.step()
            sync(self.dev)
            return time.perf_counter() - t


def step_section(model, levels, targets, weights, dev, reps, log):
    pixels = targets.shape[0] * targets.shape[1]
    # as encode_report: one pass per step on a GPU, passes of chunk_pixels on a CPU
    chunk = pixels if dev.type == "cuda" else FitConfig.chunk_pixels
    rows = []
    for level in levels:
        net = model.net(level)
        plan = net.compact_plan()
        auto = "compact" if plan_for(net, dev) is not None else "dense"
        st = {p: Stepper(net, model.levels[level].theta0, targets, weights, dev, p, chunk)
              for p in ("dense", "compact")}
        for s in st.values():
            s.step()  # warm-up
        times = {"dense": [], "compact": []}
        for _ in range(reps):
            for p in ("dense", "compact"):
                times[p].append(st[p].step())
        row = {"level": level, "density": net.density, "cost_ratio": plan.cost_ratio(),
               "widths": plan.widths, "constants": plan.n_constants, "auto": auto}
        for p, macs in (("dense", plan.dense_macs), ("compact", plan.macs)):
            t = statistics.median(times[p])
            flops = 6 * macs * pixels
            row[p] = {"step_s": t, "step_s_all": times[p], "gflops": flops / t / 1e9}
        row["speedup"] = row["dense"]["step_s"] / row["compact"]["step_s"]
        rows.append(row)
        log(f"level {level:2d} density {net.density:.3f} cost {plan.cost_ratio():.3f} "
            f"dense {row['dense']['step_s'] * 1e3:7.1f} ms ({row['dense']['gflops']:.1f} GFLOP/s) "
            f"compact {row['compact']['step_s'] * 1e3:7.1f} ms "
            f"({row['compact']['gflops']:.1f} GFLOP/s) speedup {row['speedup']:.2f} auto {auto}")
    return rows


# -- full encodes, each in its own process ------------------------------------------------------
def _encode_child(q, photo, model_path, level, path, amp, compile_, steps, device, threads):
    torch.set_num_threads(threads)
    m = inrcodec.load_model(model_path)
    dev = accel.resolve_device(device)
    img = np.asarray(Image.open(photo).convert("RGB"))
    base = rss_kb()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    with accel.options(compute=path, amp=amp, compile=compile_):
        r = inrcodec.encode_report(img, mode="weights", format_version=2, model=m, level=level,
                                   steps=steps, device=dev)
    peak = (torch.cuda.max_memory_allocated(dev) / 2 ** 20 if dev.type == "cuda"
            else (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)
    q.put({"seconds": r.seconds, "psnr": r.psnr, "bytes": r.bytes, "bpp": r.bpp,
           "peak_mib": peak, "data": r.data.hex()})


def encode_once(photo, model_path, level, path, steps, device, threads, amp=None,
                compile_=False) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_encode_child, args=(q, str(photo), model_path, level, path, amp,
                                                compile_, steps, device, threads))
    p.start()
    res = q.get()
    p.join()
    return res


def decode_ms(data: bytes, model, dev, path, reps=5) -> float:
    ts = []
    with compute_path(path):
        inrcodec.decode_array(data, model=model, device=dev)
        for _ in range(reps):
            sync(dev)
            t = time.perf_counter()
            inrcodec.decode_array(data, model=model, device=dev)
            sync(dev)
            ts.append(time.perf_counter() - t)
    return 1e3 * statistics.median(ts)


def _old_bits(armp, grids):
    """The rate term as the fit computed it before issue 21 (autograd over the ARM's
    float twin, grid by grid): the reference step's."""
    import torch  # noqa: F401
    from inrcodec.codec import prior
    from inrcodec.codec.latent import arm
    total = 0
    for g in grids:
        mu, b = arm.predict_float(armp, arm.context_float(g))
        total = total + prior.rate_bits(g.reshape(-1), b, mu).sum()
    return total


def latent_step_profile(img: np.ndarray, m, gflops: float, rounds: int = 4,
                        block: int = 6) -> dict:
    """One step of the latent fit at the default settings, part by part (ms, the median
    of its steps), each next to its floor (its FLOPs at the matmul ceiling measured in
    the same run), the fit's step (codec/latent/fit.py) next to the reference step it
    replaced (scattered pixels' features, autograd over synthesis and ARM, deterministic
    kernels), in alternating blocks of `block` steps, `rounds` times (the medians leave out
    each kind's first step). The parts are timed apart, so their sum is a little over one
    step, which is also timed whole."""
    import torch

    from inrcodec.codec.latent import arm, rate, synthesis
    from inrcodec.codec.latent.fit import Start, phases, quantised, uniform_noise
    from inrcodec.codec.latent.grids import (features_at, features_lattice, grid_shapes,
                                             lattice)
    from inrcodec.config import LatentFit, latent_lambda, LATENT_QUALITY
    fs = LatentFit(lam=latent_lambda(LATENT_QUALITY))
    a = m.arch
    h, w = img.shape[:2]
    st = Start.of(m, m.default_level)
    gen = torch.Generator().manual_seed(0)
    flat = torch.from_numpy(img.reshape(-1, 3).astype(np.float32) / 255.0)
    full = flat.t().reshape(3, h, w)
    order = phases(fs.stride)
    targets = [full[(slice(None),) + lattice(h, w, fs.stride, p)].reshape(3, -1).contiguous()
               for p in order]
    shapes = grid_shapes(h, w, a.levels)
    canvas = rate.Canvas(shapes)
    lat = [torch.zeros(s, requires_grad=True) for s in shapes]
    theta = st.theta.clone().requires_grad_(True)
    armp = [torch.from_numpy(x).float() for x in st.arm.to_float()]
    opt_new = torch.optim.Adam([{"params": lat}, {"params": [theta]}], lr=1e-3, foreach=True)
    opt_old = torch.optim.Adam([{"params": lat}, {"params": [theta]}], lr=1e-3)
    n_px = targets[0].shape[1]
    names = ("noise", "features", "synthesis", "arm_rate", "backward", "optimiser", "step")
    parts = {v: {k: [] for k in names} for v in ("reference", "new")}
    sizes = [x * y for x, y in shapes]

    def clock(v, name, fn):
        t = time.perf_counter()
        out = fn()
        parts[v][name].append(1e3 * (time.perf_counter() - t))
        return out

    def reference():
        t0 = time.perf_counter()
        q = clock("reference", "noise",
                  lambda: [v + torch.rand(v.shape, generator=gen) - 0.5 for v in lat])
        idx = torch.randint(0, h * w, (n_px,), generator=gen)
        x = clock("reference", "features", lambda: features_at(a, q, h, w, idx))
        mse = clock("reference", "synthesis",
                    lambda: (synthesis.synthesize(a, theta, x) - flat[idx]).square().mean())
        bits = clock("reference", "arm_rate", lambda: _old_bits(armp, q))
        loss = mse + fs.lam * bits / (h * w)
        opt_old.zero_grad(set_to_none=True)
        clock("reference", "backward", loss.backward)
        clock("reference", "optimiser", opt_old.step)
        parts["reference"]["step"].append(1e3 * (time.perf_counter() - t0))

    def new(k):
        t0 = time.perf_counter()

        def noisy():
            return quantised(lat, fs, k, uniform_noise(sum(sizes), 0, k).split(sizes))
        q = clock("new", "noise", noisy)
        x = clock("new", "features", lambda: features_lattice(a, q, h, w, fs.stride, order[k]))
        mse = clock("new", "synthesis", lambda: synthesis.mse(a, theta, x, targets[k]))
        bits = clock("new", "arm_rate", lambda: rate.bits(canvas, q, armp, False, fs.rate_sample))
        loss = mse + fs.lam * bits / (h * w)
        opt_new.zero_grad(set_to_none=True)
        clock("new", "backward", loss.backward)
        clock("new", "optimiser", opt_new.step)
        parts["new"]["step"].append(1e3 * (time.perf_counter() - t0))

    was = torch.are_deterministic_algorithms_enabled()
    try:
        with rate.threads(torch.get_num_threads()):
            # blocks of `block` steps of each, alternating: each step runs after its own
            # kind, as in a fit, and a slow spell of the machine falls on both
            for r in range(rounds):
                torch.use_deterministic_algorithms(True)  # as the reference fit ran
                for _ in range(block):
                    reference()
                torch.use_deterministic_algorithms(was)
                for i in range(block):
                    new((r * block + i) % len(order))
    finally:
        torch.use_deterministic_algorithms(was)
    med = {v: {k: float(np.median(x[1:])) for k, x in p.items()} for v, p in parts.items()}
    n_lat = sum(sizes)
    arm_macs = st.arm.hidden * (len(arm.CONTEXT) + 2)
    # forward 2 flops per MAC, backward 4 (the fused parts include their backward)
    syn, ar = 2 * n_px * a.macs_per_pixel(), 2 * n_lat * arm_macs
    flops = {"reference": {"synthesis": syn, "arm_rate": ar, "backward": 2 * (syn + ar),
                           "step": 3 * (syn + ar)},
             "new": {"synthesis": 3 * syn, "arm_rate": 3 * ar, "step": 3 * (syn + ar)}}
    floor = {v: {k: 1e3 * f / (gflops * 1e9) for k, f in fl.items()}
             for v, fl in flops.items()}
    return {"size": [w, h], "sampled_pixels": n_px, "latents": n_lat,
            "steps_each": rounds * block,
            "ms": med, "floor_ms": floor, "ceiling_gflops": gflops,
            "gflop_step": flops["new"]["step"] / 1e9,
            "step_over_floor": {v: med[v]["step"] / floor[v]["step"] for v in med},
            "new_over_reference": med["new"]["step"] / med["reference"]["step"]}


def big_photo() -> np.ndarray:
    """A 12 MP (4000x3000) photo: mate-backgrounds' Wood (2560x1920, a real photograph),
    Lanczos-upscaled by 1.5625."""
    from inrcodec.training.data import fetch_debian_package
    src = fetch_debian_package("mate-backgrounds") / "usr/share/backgrounds/mate/nature/Wood.jpg"
    return np.asarray(Image.open(src).convert("RGB").resize((4000, 3000), Image.LANCZOS))


def jpeg_decode_s(img: np.ndarray, reps: int = 3) -> float:
    """Best of `reps` decodes of the photo as a quality-90 JPEG (Pillow, libjpeg-turbo)."""
    import io
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=90)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        Image.open(io.BytesIO(buf.getvalue())).convert("RGB").load()
        best = min(best, time.perf_counter() - t)
    return best


def timed_encode(img: np.ndarray, m, **kw) -> dict:
    """One latent encode: its time, and the time outside the fit's steps (before the
    first step ends and after the last: loading, coding, the step-size choice, the
    check-decode)."""
    marks = []
    t0 = time.perf_counter()
    r = inrcodec.encode_report(img, mode="latent", model=m,
                               progress=lambda *a: marks.append(time.perf_counter()), **kw)
    t1 = time.perf_counter()
    steps = marks[-1] - marks[0] if len(marks) > 1 else 0.0
    per_step = steps / (len(marks) - 1) if len(marks) > 1 else 0.0
    return {"seconds": t1 - t0, "outside_fit_s": t1 - t0 - steps - per_step,
            "step_ms": 1e3 * per_step, "steps": len(marks), "bytes": r.bytes, "bpp": r.bpp,
            "psnr": r.psnr, "data": r.data}


def decode_s(data: bytes, m, reps: int = 3) -> float:
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        inrcodec.decode_array(data, model=m)
        best = min(best, time.perf_counter() - t)
    return best


def latent_section(args, dev, log, gflops: float) -> dict:
    """The latent mode: one fit step part by part next to the reference step; a
    default-effort encode and its decode of a 768x512 photo, and a 12 MP photo's encode
    (--latent-big-steps steps) and decode, each decode next to a JPEG decode of the same
    photo in the same run; MACs/pixel; PSNR and bpp against steps for the meta-learned
    init and a random one."""
    from inrcodec.config import LATENT_QUALITY, LATENT_STEPS, latent_lambda
    from inrcodec.codec.latent.model import load_latent_model, scratch_latent_model
    m = load_latent_model(args.latent_model)
    photo = next(p for p in photos(32) if Image.open(p).size == (768, 512))
    img = np.asarray(Image.open(photo).convert("RGB"))
    out = {"model": m.hash, "photo": photo.name, "size": [768, 512],
           "steps": LATENT_STEPS, "quality": LATENT_QUALITY, "ladder": m.ladder(),
           "dense_macs_per_pixel": m.arch.macs_per_pixel()}
    prof = out["step"] = latent_step_profile(img, m, gflops)
    log(f"latent step: new {prof['ms']['new']['step']:.1f} ms, reference "
        f"{prof['ms']['reference']['step']:.1f} ms (x{prof['new_over_reference']:.2f})")
    enc = timed_encode(img, m)
    data = enc.pop("data")
    out["encode"] = enc
    out["decode_s"] = decode_s(data, m)
    out["jpeg_decode_s"] = jpeg_decode_s(img)
    log(f"latent 768x512: encode {enc['seconds']:.1f} s ({enc['steps']} steps, "
        f"{enc['step_ms']:.1f} ms each, {enc['outside_fit_s']:.1f} s outside them), "
        f"{enc['bpp']:.4f} bpp, {enc['psnr']:.2f} dB; decode {out['decode_s']:.3f} s "
        f"(JPEG {out['jpeg_decode_s']:.4f} s)")
    if args.latent_big_steps:
        big = big_photo()
        enc = timed_encode(big, m, steps=args.latent_big_steps)
        data = enc.pop("data")
        out["big"] = {"size": [big.shape[1], big.shape[0]], "source": "mate-backgrounds Wood.jpg "
                      "(2560x1920), Lanczos to 4000x3000", "encode": enc,
                      "decode_s": decode_s(data, m, reps=1), "jpeg_decode_s": jpeg_decode_s(big)}
        b = out["big"]
        log(f"latent 12 MP: encode {enc['seconds']:.1f} s ({enc['steps']} steps, "
            f"{enc['outside_fit_s']:.1f} s outside them); decode {b['decode_s']:.2f} s "
            f"(JPEG {b['jpeg_decode_s']:.3f} s)")
    rand = scratch_latent_model(m.arch, n_levels=1, seed=1, arm_params=m.arm)
    lam = latent_lambda(LATENT_QUALITY)
    curve = []
    for steps in [int(x) for x in args.latent_steps.split(",") if x]:
        row = {"steps": steps}
        for name, model in (("meta", m), ("random", rand)):
            t = time.perf_counter()
            rr = inrcodec.encode_report(img, mode="latent", model=model, steps=steps, level=0)
            mse = 10 ** (-rr.psnr / 10)  # images in [0, 1]
            row[name] = {"bpp": rr.bpp, "psnr": rr.psnr, "seconds": time.perf_counter() - t,
                         "loss": mse + lam * rr.bpp}
        curve.append(row)
        log(f"latent steps {steps}: meta {row['meta']['bpp']:.4f} bpp {row['meta']['psnr']:.2f} "
            f"dB; random {row['random']['bpp']:.4f} bpp {row['random']['psnr']:.2f} dB")
    out["steps_curve"] = curve
    out["loss"] = "MSE (images in [0, 1]) + lambda x bpp, lambda of the default quality"
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="shared model (default: the shipped one)")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (1: the machine is shared)")
    ap.add_argument("--levels", default=None, help="levels for the step section (default: all)")
    ap.add_argument("--encode-levels", default="8,12,15")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--steps", type=int, default=100, help="fit steps of a full encode")
    ap.add_argument("--dataset-images", type=int, default=8)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--sections", default="steps,encode,decode,dataset,amp,compile")
    ap.add_argument("--latent-model", default=None,
                    help="latent model for the latent section (default: the shipped one)")
    ap.add_argument("--latent-steps", default="50,100,300,1000",
                    help="steps of the latent section's curve (empty: no curve)")
    ap.add_argument("--latent-big-steps", type=int, default=3,
                    help="fit steps of the latent section's 12 MP encode (0: none)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    sections = set(args.sections.split(","))
    model = inrcodec.load_model(args.model)
    model_path = str(args.model or inrcodec.default_model_path())
    dev = accel.resolve_device(args.device)
    levels = [int(x) for x in args.levels.split(",")] if args.levels else \
        list(range(len(model.levels)))
    enc_levels = [int(x) for x in args.encode_levels.split(",")]
    photo = photos(1)[0]
    img = np.asarray(Image.open(photo).convert("RGB"))
    targets, weights = image_to_tiles(img.astype(np.float32) / 127.5 - 1.0, model.tile)
    t_start = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - t_start:7.1f} s] {msg}", file=sys.stderr, flush=True)

    res = {"benchmark": "speed", "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
           "model": model.hash, "device": str(dev),
           "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda"
           else (platform.processor() or platform.machine()),
           "threads": args.threads, "torch": torch.__version__, "photo": photo.name,
           "photo_size": [img.shape[1], img.shape[0]], "tiles": int(targets.shape[0]),
           "default_level": model.default_level, "ceiling_gflops": []}
    res["ceiling_gflops"].append(ceiling(dev))
    log(f"matmul ceiling {res['ceiling_gflops'][-1]:.1f} GFLOP/s ({dev}, {args.threads} threads)")

    if "steps" in sections:
        res["steps"] = step_section(model, levels, targets, weights, dev, args.reps, log)
        res["ceiling_gflops"].append(ceiling(dev))
        log(f"matmul ceiling {res['ceiling_gflops'][-1]:.1f} GFLOP/s")

    encodes = {}
    if "encode" in sections:
        rows = []
        for level in enc_levels:
            auto = "compact" if plan_for(model.net(level), dev) is not None else "dense"
            paths = ["dense", "compact"]
            row = {"level": level, "density": model.net(level).density, "auto": auto}
            for p in paths:  # before (dense), after (compact), alternating per level
                r = encode_once(photo, model_path, level, p, args.steps, args.device,
                                args.threads)
                encodes[(level, p)] = bytes.fromhex(r.pop("data"))
                row[p] = r
                log(f"encode level {level} {p}: {r['seconds']:.1f} s, PSNR {r['psnr']:.2f} dB, "
                    f"{r['bytes']} bytes, peak {r['peak_mib']:.0f} MiB")
            row["speedup"] = row["dense"]["seconds"] / row["compact"]["seconds"]
            row["psnr_diff"] = row["compact"]["psnr"] - row["dense"]["psnr"]
            rows.append(row)
        res["encode"] = rows

    if "decode" in sections:
        rows = []
        for level in enc_levels:
            data = encodes.get((level, "dense")) or inrcodec.encode(
                img, mode="weights", format_version=2, model=model, level=level, steps=1)
            row = {"level": level}
            for p in ("dense", "compact"):
                row[f"{p}_ms"] = decode_ms(data, model, dev, p)
            row["speedup"] = row["dense_ms"] / row["compact_ms"]
            rows.append(row)
            log(f"decode level {level}: dense {row['dense_ms']:.1f} ms, "
                f"compact {row['compact_ms']:.1f} ms")
        res["decode"] = rows

    if "dataset" in sections:
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "src"
            src.mkdir()
            for p in photos(args.dataset_images):
                a = np.asarray(Image.open(p).convert("RGB"))
                h, w = a.shape[:2]
                c = args.crop
                Image.fromarray(a[(h - c) // 2:(h - c) // 2 + c,
                                  (w - c) // 2:(w - c) // 2 + c]).save(src / p.name)
            if dev.type == "cuda":
                torch.cuda.reset_peak_memory_stats(dev)
            r = inrcodec.encode_dataset(src, Path(tmp) / "out", mode="weights", format_version=2,
                                        model=model, steps=args.steps,
                                        device=dev)
            man = json.loads((Path(tmp) / "out" / "manifest.json").read_text())
            res["dataset"] = {"images": r.encoded, "crop": args.crop, "seconds": r.seconds,
                              "images_per_s": r.images_per_second,
                              "level": model.default_level,
                              "mean_psnr": man["totals"]["mean_psnr"],
                              "mean_bpp": man["totals"]["mean_bpp"],
                              "batch_pixels": FitConfig.max_batch_pixels if dev.type != "cuda"
                              else inrcodec.batch.batch_pixels_for(model.arch, dev)}
            if dev.type == "cuda":
                res["dataset"]["peak_mib"] = torch.cuda.max_memory_allocated(dev) / 2 ** 20
        log(f"dataset: {r.encoded} images of {args.crop}x{args.crop} in {r.seconds:.1f} s, "
            f"{r.images_per_second:.3f} images/s")

    level = model.default_level
    if "amp" in sections:
        net = model.net(level)
        path = "compact" if plan_for(net, dev) is not None else "dense"
        out = {"level": level, "path": path}
        st = {}
        for amp in (None, "bf16"):
            with accel.options(amp=amp):
                st[amp] = Stepper(net, model.levels[level].theta0, targets, weights, dev, path,
                                  FitConfig.chunk_pixels)
                st[amp].step()
        times = {None: [], "bf16": []}
        for _ in range(args.reps):
            for amp in (None, "bf16"):
                with accel.options(amp=amp):
                    times[amp].append(st[amp].step())
        out["fp32_step_s"] = statistics.median(times[None])
        out["bf16_step_s"] = statistics.median(times["bf16"])
        ref = encodes.get((level, path))
        r = encode_once(photo, model_path, level, path, args.steps, args.device, args.threads,
                        amp="bf16")
        out["bf16_encode"] = {k: v for k, v in r.items() if k != "data"}
        if ref is None:
            ref_r = encode_once(photo, model_path, level, path, args.steps, args.device,
                                args.threads)
            out["fp32_encode"] = {k: v for k, v in ref_r.items() if k != "data"}
        else:
            out["fp32_encode"] = next(row[path] for row in res["encode"] if row["level"] == level)
        out["psnr_diff"] = out["bf16_encode"]["psnr"] - out["fp32_encode"]["psnr"]
        res["amp"] = out
        log(f"bf16: step {out['bf16_step_s'] * 1e3:.1f} ms vs fp32 {out['fp32_step_s'] * 1e3:.1f} ms;"
            f" encode PSNR {out['bf16_encode']['psnr']:.2f} vs {out['fp32_encode']['psnr']:.2f} dB")

    if "compile" in sections:
        net = model.net(level)
        path = "compact" if plan_for(net, dev) is not None else "dense"
        plain = Stepper(net, model.levels[level].theta0, targets, weights, dev, path,
                        FitConfig.chunk_pixels)
        plain.step()
        with accel.options(compile=True):
            comp = Stepper(net, model.levels[level].theta0, targets, weights, dev, path,
                           FitConfig.chunk_pixels)
            first = comp.step()
        times = {"eager": [], "compiled": []}
        for _ in range(args.reps):
            times["eager"].append(plain.step())
            with accel.options(compile=True):
                times["compiled"].append(comp.step())
        res["compile"] = {"level": level, "path": path, "first_step_s": first,
                          "eager_step_s": statistics.median(times["eager"]),
                          "compiled_step_s": statistics.median(times["compiled"])}
        c = res["compile"]
        log(f"compile: first step {first:.1f} s; step {c['compiled_step_s'] * 1e3:.1f} ms vs "
            f"eager {c['eager_step_s'] * 1e3:.1f} ms")

    if "latent-step" in sections:
        from inrcodec.codec.latent.model import load_latent_model
        photo = next(p for p in photos(32) if Image.open(p).size == (768, 512))
        prof = latent_step_profile(np.asarray(Image.open(photo).convert("RGB")),
                                   load_latent_model(args.latent_model),
                                   statistics.median(res["ceiling_gflops"]))
        res["latent_step"] = {"photo": photo.name, **prof}
        for v in ("reference", "new"):
            log(f"latent step, {v} (ms, floor ms): " + ", ".join(
                f"{k} {x:.1f}" + (f" ({prof['floor_ms'][v][k]:.1f})"
                                  if k in prof["floor_ms"][v] else "")
                for k, x in prof["ms"][v].items())
                + f"; step/floor {prof['step_over_floor'][v]:.1f}x")
        log(f"latent step: new/reference {prof['new_over_reference']:.2f}")
    if "latent" in sections:
        res["latent"] = latent_section(args, dev, log, statistics.median(res["ceiling_gflops"]))
        lt = res["latent"]
        ceil_now = statistics.median(res["ceiling_gflops"])
        # the synthesis's share of the machine at decode: 2 flops per MAC per pixel
        lt["decode_synthesis_gflop"] = 2 * lt["dense_macs_per_pixel"] * 768 * 512 / 1e9
        lt["decode_synthesis_s_at_ceiling"] = lt["decode_synthesis_gflop"] / ceil_now

    res["ceiling_gflops"].append(ceiling(dev))
    log(f"matmul ceiling {res['ceiling_gflops'][-1]:.1f} GFLOP/s")
    ceil = res["ceiling_gflops_median"] = statistics.median(res["ceiling_gflops"])
    for row in res.get("steps", []):
        for p in ("dense", "compact"):
            row[p]["ceiling_fraction"] = row[p]["gflops"] / ceil
    res["seconds"] = time.perf_counter() - t_start
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1) + "\n")
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()

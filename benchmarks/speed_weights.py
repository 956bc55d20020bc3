"""speed.py's weight-mode sections (fit steps per level, full encodes in child processes,
decodes, dataset throughput, bf16 autocast, torch.compile) and the measuring helpers every
section shares (the matmul ceiling, the development photos, resident memory)."""
from __future__ import annotations

import json
import multiprocessing as mp
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import inrcodec
from inrcodec.model import accel
from inrcodec.codec.weights.codec import batch_pixels_for
from inrcodec.codec.weights.config import FitConfig
from inrcodec.training.data import build_dev_set, cache_dir
from inrcodec.model.sparse import compute_path, plan_for
from inrcodec.codec.weights.tiles import tile_coords
from inrcodec.model.shared_model import load_model


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
    m = load_model(model_path)
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


# -- the sections of main() ------------------------------------------------------------------
def encode_section(model, photo, model_path, enc_levels, args, dev, log, encodes) -> list[dict]:
    """Full encodes per level, dense then compact, each in its own process; their bytes
    go into `encodes` for the decode and amp sections."""
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
    return rows


def decode_section(model, img, enc_levels, dev, log, encodes) -> list[dict]:
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
    return rows


def dataset_section(model, args, dev, log) -> dict:
    """encode_dataset on --dataset-images centre crops of --crop pixels."""
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
        out = {"images": r.encoded, "crop": args.crop, "seconds": r.seconds,
               "images_per_s": r.images_per_second,
               "level": model.default_level,
               "mean_psnr": man["totals"]["mean_psnr"],
               "mean_bpp": man["totals"]["mean_bpp"],
               "batch_pixels": FitConfig.max_batch_pixels if dev.type != "cuda"
               else batch_pixels_for(model, dev)}
        if dev.type == "cuda":
            out["peak_mib"] = torch.cuda.max_memory_allocated(dev) / 2 ** 20
    log(f"dataset: {r.encoded} images of {args.crop}x{args.crop} in {r.seconds:.1f} s, "
        f"{r.images_per_second:.3f} images/s")
    return out


def amp_section(model, photo, model_path, targets, weights, args, dev, log, encodes,
                encode_rows) -> dict:
    """bf16 autocast against float32: step time, and the decoded PSNR of a full encode."""
    level = model.default_level
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
        out["fp32_encode"] = next(row[path] for row in encode_rows if row["level"] == level)
    out["psnr_diff"] = out["bf16_encode"]["psnr"] - out["fp32_encode"]["psnr"]
    log(f"bf16: step {out['bf16_step_s'] * 1e3:.1f} ms vs fp32 {out['fp32_step_s'] * 1e3:.1f} ms;"
        f" encode PSNR {out['bf16_encode']['psnr']:.2f} vs {out['fp32_encode']['psnr']:.2f} dB")
    return out


def compile_section(model, targets, weights, args, dev, log) -> dict:
    """torch.compile: the first (compiling) step's time, then step time against eager."""
    level = model.default_level
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
    c = {"level": level, "path": path, "first_step_s": first,
         "eager_step_s": statistics.median(times["eager"]),
         "compiled_step_s": statistics.median(times["compiled"])}
    log(f"compile: first step {first:.1f} s; step {c['compiled_step_s'] * 1e3:.1f} ms vs "
        f"eager {c['eager_step_s'] * 1e3:.1f} ms")
    return c

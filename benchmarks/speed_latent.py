"""speed.py's latent-mode sections: one fit step part by part next to the reference step
it replaced, a default-effort encode and decode (and a 12 MP photo's), each decode next to
a JPEG decode, and a steps curve of the shipped model against a random synthesis init."""
from __future__ import annotations

import dataclasses
import time

import numpy as np
from PIL import Image

import inrcodec


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


PARTS = ("noise", "features", "synthesis", "arm_rate", "backward", "optimiser", "step")


def _alternate(reference, new, rounds: int, block: int, n_phases: int) -> None:
    """Blocks of `block` steps of each, alternating, `rounds` times: each step runs after its
    own kind, as in a fit, and a slow spell of the machine falls on both."""
    import torch

    from inrcodec.codec.latent import rate
    was = torch.are_deterministic_algorithms_enabled()
    try:
        with rate.threads(torch.get_num_threads()):
            for r in range(rounds):
                torch.use_deterministic_algorithms(True)  # as the reference fit ran
                for _ in range(block):
                    reference()
                torch.use_deterministic_algorithms(was)
                for i in range(block):
                    new((r * block + i) % n_phases)
    finally:
        torch.use_deterministic_algorithms(was)


def _profile_result(st, a, size, n_px, sizes, parts, gflops, steps_each, rate_sample) -> dict:
    """Medians (leaving out each kind's first step), floors at the ceiling, ratios."""
    from inrcodec.codec.latent import arm
    med = {v: {k: float(np.median(x[1:])) for k, x in p.items()} for v, p in parts.items()}
    n_lat = sum(sizes)
    # the ARM's MACs a latent: its first layer, its residual layer if it has one, its output
    arm_macs = st.arm.hidden * (len(arm.CONTEXT) + 2) + (st.arm.hidden ** 2
                                                         if st.arm.residual else 0)
    # forward 2 flops per MAC, backward 4 (the fused parts include their backward); the
    # reference's rate reads every latent, the fit's a sampled share of them (rate_sample)
    syn = 2 * n_px * a.macs_per_pixel()
    ar, ar_new = 2 * n_lat * arm_macs, 2 * n_lat * arm_macs * rate_sample
    flops = {"reference": {"synthesis": syn, "arm_rate": ar, "backward": 2 * (syn + ar),
                           "step": 3 * (syn + ar)},
             "new": {"synthesis": 3 * syn, "arm_rate": 3 * ar_new,
                     "step": 3 * (syn + ar_new)}}
    floor = {v: {k: 1e3 * f / (gflops * 1e9) for k, f in fl.items()}
             for v, fl in flops.items()}
    return {"size": size, "sampled_pixels": n_px, "latents": n_lat,
            "steps_each": steps_each,
            "arm_macs_per_latent": arm_macs, "rate_sample": rate_sample,
            "ms": med, "floor_ms": floor, "ceiling_gflops": gflops,
            "gflop_step": flops["new"]["step"] / 1e9,
            "step_over_floor": {v: med[v]["step"] / floor[v]["step"] for v in med},
            "new_over_reference": med["new"]["step"] / med["reference"]["step"]}


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

    from inrcodec.codec.latent import layout, rate, synthesis
    from inrcodec.codec.latent.fit import Start, phases, quantised, uniform_noise
    from inrcodec.codec.latent.optim import Nets
    from inrcodec.codec.latent.grids import features_at, features_lattice, lattice
    from inrcodec.codec.latent.config import LatentFit, QUALITY as LATENT_QUALITY, latent_lambda
    fs = LatentFit(lam=latent_lambda(LATENT_QUALITY))
    a, fixed = m.arch, dataclasses.replace(m.arch, upsample="bilinear")  # the reference's
    h, w = img.shape[:2]
    st = Start.of(m, m.default_level)
    gen = torch.Generator().manual_seed(0)
    flat = torch.from_numpy(img.reshape(-1, 3).astype(np.float32) / 255.0)
    full = flat.t().reshape(3, h, w)
    order = phases(fs.stride)
    targets = [full[(slice(None),) + lattice(h, w, fs.stride, p)].reshape(3, -1).contiguous()
               for p in order]
    shapes = layout.grid_shapes(h, w, a.levels)
    canvas = rate.Canvas(shapes)
    lat = [torch.zeros(s, requires_grad=True) for s in shapes]
    theta = st.theta.clone().requires_grad_(True)
    armp = [torch.from_numpy(x).float() for x in st.arm.to_float()]
    # the fit's own split: Adam for the latents, Nets (SOAP by default) for the synthesis
    opt_new = torch.optim.Adam(lat, lr=1e-3, foreach=True)
    nets = Nets(a, st.theta.clone(), st.mask.float(), [], fs)
    opt_old = torch.optim.Adam([{"params": lat}, {"params": [theta]}], lr=1e-3)
    n_px = targets[0].shape[1]
    parts = {v: {k: [] for k in PARTS} for v in ("reference", "new")}
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
        x = clock("reference", "features", lambda: features_at(fixed, q, h, w, idx))
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
        th = nets.theta()
        x = clock("new", "features", lambda: features_lattice(
            a, q, h, w, fs.stride, order[k], synthesis.taps(a, th)))
        mse = clock("new", "synthesis", lambda: synthesis.mse(a, th, x, targets[k]))
        bits = clock("new", "arm_rate", lambda: rate.bits(canvas, q, armp, False, fs.rate_sample))
        loss = mse + fs.lam * bits / (h * w)
        opt_new.zero_grad(set_to_none=True)
        nets.zero_grad()
        clock("new", "backward", loss.backward)
        clock("new", "optimiser", lambda: (opt_new.step(), nets.step(1.0)))
        parts["new"]["step"].append(1e3 * (time.perf_counter() - t0))

    _alternate(reference, new, rounds, block, len(order))
    return _profile_result(st, a, [w, h], n_px, sizes, parts, gflops, rounds * block, fs.rate_sample)


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


def latent_section(args, photo, log, gflops: float) -> dict:
    """The latent mode: one fit step part by part next to the reference step; a
    default-effort encode and its decode of a 768x512 photo, and a 12 MP photo's encode
    (--latent-big-steps steps) and decode, each decode next to a JPEG decode of the same
    photo in the same run; MACs/pixel; PSNR and bpp against steps for the meta-learned
    init and a random one. `photo`: a 768x512 development photo."""
    from inrcodec.codec.latent.config import QUALITY as LATENT_QUALITY, STEPS as LATENT_STEPS, latent_lambda
    from inrcodec.codec.latent.model import load_latent_model, scratch_latent_model
    m = load_latent_model(args.latent_model)
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



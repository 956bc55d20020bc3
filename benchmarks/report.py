"""Tables, BD comparisons and plots from results files (any codec, any method)."""
from __future__ import annotations

import math
from pathlib import Path

from .bd import BDError, bd_psnr, bd_rate, hull, overlap, pareto
from .harness import BenchError, Curve, curve, value_at


FRONTS = {"pareto": pareto, "hull": hull}


def front(c: Curve, how: str = "pareto") -> tuple[Curve, list[dict]]:
    """The curve's efficient points and the points dropped: "pareto" (bd.pareto) for a sweep
    of one setting, "hull" (bd.hull, the operational curve) for sweeps of several."""
    keep = FRONTS[how](list(c.x), list(c.y))
    dropped = [c.points[i] for i in range(len(c.x)) if i not in keep]
    return Curve(c.label, c.x[keep], c.y[keep], [c.points[i] for i in keep], c.n_images), dropped


def bd_compare(anchor: Curve, test: Curve, method: str = "pchip", how: str = "pareto") -> dict:
    """BD-rate (%) and BD-PSNR (dB) of test against anchor on their efficient fronts.

    Values that cannot be computed are None, with the reason in `*_error`.
    """
    a, a_drop = front(anchor, how)
    t, t_drop = front(test, how)
    out = {"method": method, "anchor_dropped": a_drop, "test_dropped": t_drop}
    for key, fn, ax, tx in (("bd_rate", bd_rate, a.y, t.y), ("bd_psnr", bd_psnr, a.x, t.x)):
        try:
            out[key] = fn(a.x, a.y, t.x, t.y, method=method)
            lo, hi = overlap(ax, tx)
            out[key + "_interval"] = (lo, hi)
        except BDError as e:
            out[key], out[key + "_error"] = None, str(e)
    return out


def spans(res: dict, images=None, lo: float = 0.1, hi: float = 2.0) -> str:
    """How many images have rows at or below `lo` bpp and at or above `hi` bpp."""
    by: dict[str, list[float]] = {}
    for r in res["rows"]:
        if r.get("bpp") is not None and (images is None or r["image"] in images):
            by.setdefault(r["image"], []).append(r["bpp"])
    return f"{sum(min(v) <= lo and max(v) >= hi for v in by.values())}/{len(by)}"


def _why(err: str) -> str:
    return "no overlap" if "overlap" in err else "too few points" if "at least" in err else "n/a"


def _fmt(v, spec=".2f", none="-"):
    return none if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def table(results: list[dict], anchor: dict | None, bpps=(0.25, 0.5, 1.0), method: str = "pchip",
          images: list[str] | None = None, how: str = "pareto") -> str:
    """Markdown: PSNR at the given bpp (interpolated in log bpp on the efficient front of the
    mean curve, see `front`) and BD against the anchor. Curves are over `images` when given,
    else each run's own images."""
    head = ["codec", "images", "mean bpp range", "images spanning 0.1-2 bpp"] + [f"PSNR @ {b:g} bpp" for b in bpps]
    if anchor is not None:
        head += [f"BD-rate vs {anchor['label']}", "BD-PSNR", "PSNR interval (BD-rate)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    ca = curve(anchor, images=images) if anchor is not None else None
    for res in results:
        c = curve(res, images=images)
        cells = [res["label"], str(c.n_images),
                 f"{c.x[0]:.3g}-{c.x[-1]:.3g}" if len(c.x) else "-", spans(res, images)]
        cells += [_fmt(value_at(front(c, how)[0], b)) for b in bpps]
        if ca is not None:
            if res is anchor:
                cells += ["(anchor)", "", ""]
            else:
                d = bd_compare(ca, c, method, how)
                rate = f"{d['bd_rate']:+.1f}%" if d["bd_rate"] is not None else \
                    _why(d["bd_rate_error"])
                dp = f"{d['bd_psnr']:+.2f} dB" if d["bd_psnr"] is not None else \
                    _why(d["bd_psnr_error"])
                iv = d.get("bd_rate_interval")
                cells += [rate, dp, f"{iv[0]:.1f}-{iv[1]:.1f} dB" if iv else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


AXES = {"bpp": "bits per pixel (file size)", "params": "stored parameters",
        "psnr": "PSNR (dB)", "ms_ssim": "MS-SSIM"}


def plot(results: list[dict], out: Path, *, x: str = "bpp", y: str = "psnr",
         images: list[str] | None = None, title: str | None = None,
         xlim: tuple[float, float] | None = None, force: bool = False,
         how: str | None = None) -> None:
    """One line per results file, mean y against mean x (log x), written to a PNG. With
    `how`, the line is the efficient front (see `front`) and other points are dots."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise BenchError("plotting needs matplotlib: pip install matplotlib "
                         "(or the bench extra: pip install -e '.[bench]')") from None
    from inrcodec.io import atomic_output

    fig, ax = plt.subplots(figsize=(7.5, 5), dpi=120)
    drawn = 0
    for res in results:
        c = curve(res, x=x, y=y, images=images)
        if not len(c.x):
            continue
        ours = res["codec"].startswith("inrcodec")
        f, dropped = front(c, how) if how else (c, [])
        line, = ax.plot(f.x, f.y, "s--" if ours else "o-", ms=6 if ours else 3.5,
                        lw=1.8 if ours else 1.4, label=f"{c.label} ({c.n_images} images)")
        if dropped:
            ax.plot(c.x, c.y, ".", ms=3, color=line.get_color(), alpha=0.4)
        drawn += 1
    if not drawn:
        plt.close(fig)
        raise BenchError(f"no results file has both {x} and {y} to plot")
    ax.set_xscale("log")
    if xlim:
        ax.set_xlim(*xlim)
    ax.set_xlabel(AXES.get(x, x) + " (log scale)")
    ax.set_ylabel(AXES.get(y, y))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    with atomic_output(Path(out), force) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


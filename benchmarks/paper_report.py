"""paper.py's report: tables (markdown) and plots from the results folders of the paper's
experiments (Figures 2-3, Appendix B, Section 5.3)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from inrcodec.io import atomic_output

from .harness import BenchError, load_result

LABELS = {"meta-sparse": "Meta-SparseINR", "random-pruning": "Random Pruning",
          "dense-narrow": "Dense-Narrow",
          "dense-narrow-matched": "Dense-Narrow (steps matched)", "scratch": "Scratch", "maml-oneshot": "MAML+OneShot",
          "maml-imp": "MAML+IMP", "winning-ticket": "Winning ticket (IMP, rewinding)"}
DEFAULT_LR = 1e-4  # the paper's test-time Adam learning rate


def fig2_dir(out_dir: Path, family: str, scale: str, fig: str = "fig2",
             lr: float = DEFAULT_LR) -> Path:
    return out_dir / (f"{fig}-{family}-{scale}" + ("" if lr == DEFAULT_LR else f"-lr{lr:g}"))


def seed_stats(res: dict, key: str = "psnr") -> dict:
    """{level: (mean params, mean over seeds, std over seeds, n seeds)} of per-seed means."""
    by: dict = {}
    for r in res["rows"]:
        by.setdefault(r["level"], {}).setdefault(r["seed"], []).append(r)
    out = {}
    for lv, seeds in sorted(by.items()):
        means = [float(np.mean([r[key] for r in rs])) for rs in seeds.values()]
        params = float(np.mean([r["params"] for rs in seeds.values() for r in rs]))
        out[lv] = (params, float(np.mean(means)),
                   float(np.std(means, ddof=1)) if len(means) > 1 else 0.0, len(means))
    return out


def _load_dir(d: Path) -> dict[str, dict]:
    if not d.is_dir():
        raise BenchError(f"{d}: no results (run the experiment first)")
    res = {}
    for m in LABELS:
        if (d / f"{m}.json").exists():
            r = load_result(d / f"{m}.json")
            if r["rows"]:
                res[m] = r
    return res


def fig2_table(results: dict[str, dict]) -> str:
    stats = {m: seed_stats(r) for m, r in results.items()}
    levels = sorted({lv for s in stats.values() for lv in s})
    ms = list(stats)
    n = max((s[3] for st in stats.values() for s in st.values()), default=0)
    out = ["| level | " + " | ".join(LABELS[m] for m in ms) + " |",
           "|---|" + "---|" * len(ms)]
    for lv in levels:
        cells = []
        for m in ms:
            if lv in stats[m]:
                p, mu, sd, k = stats[m][lv]
                cells.append(f"{mu:.2f} ± {sd:.2f} ({p:.0f})" + (f" [{k} seeds]" if k < n else ""))
            else:
                cells.append("-")
        out.append(f"| {lv} | " + " | ".join(cells) + " |")
    out.append(f"\nPSNR (dB) mean ± std over {n} seed(s) of the per-seed mean over the test "
               "signals; parameters in brackets. Level: the Meta-SparseINR level whose size "
               "the row matches.")
    return "\n".join(out)


def fig3_table(results: dict[str, dict]) -> str:
    out = ["| method | params | PSNR at step 0 | at step 2 | at the last step |",
           "|---|---|---|---|---|"]
    for m, r in results.items():
        r0 = dict(r, rows=[dict(row, psnr_step0=row["curve"][0]) for row in r["rows"]])
        s0, s2, sl = (seed_stats(r0, k) for k in ("psnr_step0", "psnr_step2", "psnr"))
        for lv in s2:
            out.append(f"| {LABELS[m]} | {s2[lv][0]:.0f} | " + " | ".join(
                f"{s[lv][1]:.2f} ± {s[lv][2]:.2f}" for s in (s0, s2, sl)) + " |")
    return "\n".join(out)


def ticket_table(results: dict[str, dict]) -> str:
    out = ["| method | params | peak PSNR |", "|---|---|---|"]
    for m, r in results.items():
        for row in sorted(r["rows"], key=lambda row: -row["params"]):
            out.append(f"| {LABELS[m]} | {row['params']} | {row['psnr']:.2f} |")
    return "\n".join(out)


def _plt():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise BenchError("plots need matplotlib: pip install matplotlib "
                         "(or the bench extra: pip install -e '.[bench]')") from None
    return plt


def _finish(plt, fig, ax, out: Path, xlabel: str, title: str) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_output(out, force=True) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def plot_params(results: dict[str, dict], out: Path, title: str, errorbars: bool = True) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for m, r in results.items():
        if r["sweep"] == ["level"] and "seed" not in r["rows"][0]:
            rows = sorted(r["rows"], key=lambda row: row["params"])
            ax.plot([x["params"] for x in rows], [x["psnr"] for x in rows], "o-",
                    label=LABELS[m])
            continue
        st = seed_stats(r)
        xs = [v[0] for v in st.values()]
        ax.errorbar(xs, [v[1] for v in st.values()],
                    yerr=[v[2] for v in st.values()] if errorbars else None,
                    marker="o", capsize=3, label=LABELS[m])
    ax.set_xscale("log")
    _finish(plt, fig, ax, out, "parameters", title)


def plot_trace(results: dict[str, dict], out: Path, title: str) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for m, r in results.items():
        c = np.mean([row["curve"] for row in r["rows"]], axis=0)
        ax.plot(np.arange(len(c)), c, label=f"{LABELS[m]} ({r['rows'][0]['params']} params)")
    _finish(plt, fig, ax, out, "Adam step", title)


def report(args) -> None:
    """Tables (markdown) and plots from the results folders of one family and scale."""
    parts = []
    fam = f"{args.family}, {args.scale}" + ("" if args.lr == DEFAULT_LR else f", lr {args.lr:g}")
    for d, head, table, plot, title in (
            (fig2_dir(args.out_dir, args.family, args.scale, lr=args.lr), f"Figure 2 ({fam})",
             fig2_table, plot_params, f"Figure 2 ({fam}): PSNR vs parameters"),
            (fig2_dir(args.out_dir, args.family, args.scale, "fig3", args.lr), f"Figure 3 ({fam})",
             fig3_table, plot_trace, f"Figure 3 ({fam}): PSNR over the fit"),
            (args.out_dir / f"ticket-{args.size}", f"Section 5.3 (one {args.size}x{args.size} "
             "photo)", ticket_table, plot_params, "Section 5.3: peak PSNR vs parameters "
             "({photo}, width {arch[width]}, {steps} Adam steps a round)")):
        results = _load_dir(d) if d.is_dir() else {}
        if results:
            parts += [f"## {head}", "", table(results), ""]
            if args.plots:
                # d.name may hold a dot (fig2-siren-cpu-lr0.001): append, not with_suffix
                plot(results, d.with_name(d.name + ".png"),
                     title.format(**next(iter(results.values()))["settings"]))
    if not parts:
        raise BenchError(f"no results under {args.out_dir} for {args.family} / {args.scale}")
    text = "\n".join(parts)
    print(text)
    if args.md:
        with atomic_output(Path(args.md), force=True) as tmp:
            tmp.write_text(text + "\n")



"""An earlier decoder against this tree's, on the same files: decode time (each file's best
of --reps, the median over files; the two decoders' processes alternate, --rounds times)
and how many 8-bit samples differ.

    git worktree add /tmp/old <commit>
    python benchmarks/studies/decoder_versions.py --old-tree /tmp/old --inr-dir DIR \\
        --out benchmarks/results/decoder-versions-0.13.json

Both trees are imported by path, each in processes of its own, on --threads threads.

Result: benchmarks/results/decoder-versions-0.13.json (0.12's decoder against issue 36's).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.harness import command_line  # noqa: E402

_CHILD = """
import sys, time, json
import numpy as np
sys.path.insert(0, sys.argv[1])
import torch
import inrcodec
torch.set_num_threads(int(sys.argv[2]))
reps, out, files = int(sys.argv[3]), sys.argv[4], sys.argv[5:]
best, pixels = [], {}
for k, f in enumerate(files):
    data = open(f, "rb").read()
    pixels[str(k)] = inrcodec.decode_array(data)
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        inrcodec.decode_array(data)
        ts.append(time.perf_counter() - t)
    best.append(min(ts))
np.savez(out, **pixels)
print(json.dumps(best))
"""


def _run(tree: Path, files, threads: int, reps: int, out: Path) -> list[float]:
    r = subprocess.run([sys.executable, "-c", _CHILD, str(tree), str(threads), str(reps),
                        str(out), *map(str, files)], capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv=None):
    import numpy as np
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old-tree", required=True, type=Path)
    ap.add_argument("--inr-dir", required=True, type=Path)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    files = sorted(args.inr_dir.glob("*.inr"))
    trees = {"old": args.old_tree.resolve(), "new": ROOT}
    times = {k: [] for k in trees}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for k, tree in trees.items():
                times[k].append(_run(tree, files, args.threads, args.reps, Path(tmp) / k))
        old, new = np.load(Path(tmp) / "old.npz"), np.load(Path(tmp) / "new.npz")
        diffs = [np.abs(old[k].astype(int) - new[k].astype(int)) for k in old.files]
    best = {k: [min(x) for x in zip(*v)] for k, v in times.items()}
    med = {k: statistics.median(v) for k, v in best.items()}
    commit = subprocess.run(["git", "-C", str(args.old_tree), "rev-parse", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    res = {"benchmark": "decoder-versions", "command": command_line(sys.argv[0], sys.argv[1:]),
           "old_commit": commit, "files": len(files), "threads": args.threads,
           "median_decode_s": med, "old_over_new": med["old"] / med["new"],
           "per_file_s": best, "samples": int(sum(d.size for d in diffs)),
           "samples_off": int(sum((d > 0).sum() for d in diffs)),
           "max_diff": int(max(d.max() for d in diffs))}
    Path(args.out).write_text(json.dumps(res, indent=1) + "\n")
    print(f"old {1e3 * med['old']:.1f} ms, new {1e3 * med['new']:.1f} ms "
          f"(x{res['old_over_new']:.2f}); {res['samples_off']} of {res['samples']} samples "
          f"differ (at most {res['max_diff']})", file=sys.stderr)


if __name__ == "__main__":
    main()

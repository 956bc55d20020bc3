"""Decode speed of one file by the three decoders in one run: Python's
`inrcodec.decode_array`, web/ in Node (tools/bench.mjs) and the page in headless Chromium
(tools/bench-browser.mjs), each REPS times after a warm-up; medians in ms and the ratios
to Python. The machine may be shared: compare the ratios, and run it more than once.

    PYTHONPATH=. python web/tools/bench.py web/test/photos/palapeli-castle-maintenon.inr --reps 7
"""
from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def python_ms(data: bytes, reps: int) -> list[float]:
    import inrcodec
    sys.path.insert(0, str(ROOT / "web" / "fuzz"))
    import reference  # the test vectors' models too
    model = reference._model(data)
    inrcodec.decode_array(data, model=model)
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        inrcodec.decode_array(data, model=model)
        out.append(1000 * (time.perf_counter() - t))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file", type=Path)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--no-browser", action="store_true")
    args = ap.parse_args()
    data = args.file.read_bytes()
    rows = {}
    py = python_ms(data, args.reps)
    rows["python decode_array"] = statistics.median(py)
    r = subprocess.run(["node", str(ROOT / "web/tools/bench.mjs"), str(args.file), str(args.reps)],
                       capture_output=True, text=True, check=True)
    node = json.loads(r.stdout)
    rows["node decode()"] = node["total"]
    print("node stages (ms):", {k: node[k] for k in ("entropy", "upsample", "synthesis")})
    br = None
    if not args.no_browser:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        srv = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(1)
            r = subprocess.run(["node", str(ROOT / "web/tools/bench-browser.mjs"),
                                f"http://127.0.0.1:{port}/web/index.html", str(args.file.resolve()),
                                str(args.reps)], capture_output=True, text=True, check=True)
            br = json.loads(r.stdout)
            rows["chromium decoder (worker)"] = br["decoder"]
            rows["chromium page (pick -> drawn)"] = br["wall"]
            print("chromium, a run:", br["runs"][len(br["runs"]) // 2]["status"], br["version"])
        finally:
            srv.terminate()
    base = rows["python decode_array"]
    print(f"{args.file.name}, {args.reps} repetitions, medians:")
    for k, v in rows.items():
        print(f"  {k:32s} {v:8.1f} ms   {v / base:5.2f} x python")
    print(json.dumps({"file": str(args.file), "reps": args.reps, "python_runs": py,
                      "node": node, "chromium": br and {k: br[k] for k in ("decoder", "wall", "version")},
                      "medians_ms": rows}))


if __name__ == "__main__":
    main()

"""The benchmark harness: methods and codecs, resumable runs, one results schema.

A *method* turns images into per-image rows at each of its operating points (a sweep of
settings such as a JPEG quality or an inrcodec level). A *codec* is a method measured the
standard way: compress, decompress, and score the decoded 8-bit image against the source.
Paper experiments that fit networks without writing files plug in as methods that return
at least `psnr` and `params` for a row.

Results schema (one JSON file per run of one method):

    {"schema": 2, "codec", "label", "description", "settings", "sweep": [point keys],
     "command", "commands", "machine", "images": [names],
     "rows": [{"image", <point keys>, "bytes", "bpp", "psnr", "ms_ssim",
               "encode_s", "decode_s", "params", ...}],
     "summary": [{<point keys>, "n", means of the numeric row fields, ...}]}

bpp is 8 x (file size) / pixels; PSNR and MS-SSIM are measured on the decoded 8-bit image.
The summary is always recomputed from the rows (`summarize`), and every curve, table and
plot is computed from the rows, never from a stored summary.

The package, by concern: `schema` (the results files: reading, writing, resuming, the
summary), `commands` (recorded commands without machine paths), `images` (the
development photos and other inputs), `codecs` (methods and codecs: the classical ones
and inrcodec), `runs` (a resumable run of one method) and `curves` (rate-quality curves
from the rows). Everything is imported here, so callers use
`from benchmarks import harness` and `harness.NAME`.
"""
from .codecs import (CLASSICAL, QUICK, SWEEPS, Codec, Inrcodec, JpegXL, Method,
                     PillowCodec, make_codec)
from .commands import ROOT, command_line, portable_args, portable_command, portable_path
from .curves import Curve, common_images, curve, value_at
from .images import centre_crop, dev_images, dev_paths, dev_set, load_images, quick_images
from .runs import RunLog, run
from .schema import (METRICS, SCHEMA, BenchError, ResultsFile, load_result,
                     machine, open_result, row_key, summarize, sync, write_result)

__all__ = ["CLASSICAL", "QUICK", "SWEEPS", "Codec", "Inrcodec", "JpegXL", "Method", "PillowCodec",
           "make_codec", "ROOT", "command_line", "portable_args", "portable_command",
           "portable_path", "Curve", "common_images", "curve", "value_at", "centre_crop",
           "dev_images", "dev_paths", "dev_set", "load_images", "quick_images", "RunLog", "run", "METRICS",
           "SCHEMA", "BenchError", "ResultsFile", "load_result", "machine", "open_result",
           "row_key", "summarize", "sync", "write_result"]

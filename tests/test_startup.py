"""What a call costs before its first pixel: decoding a file of the default format (7,
learned upsampling) at its own size, by the API or the command line, imports no torch,
which alone took about 1 s of a CLI call. The fixed upsamplings (files of 0.11's model and
before) interpolate with torch, as the spec's reference does, and the weight mode runs on
torch: both still work."""
import subprocess
import sys
from pathlib import Path

VEC = Path(__file__).resolve().parents[1] / "bitstream_spec" / "vectors"

_PROBE = """
import sys
import inrcodec
from inrcodec.cli import main
inrcodec.decode_array(open(sys.argv[1], "rb").read(), model=sys.argv[2] if len(sys.argv) > 2 else None)
print("torch" in sys.modules)
"""


def _imports_torch(*args) -> bool:
    r = subprocess.run([sys.executable, "-c", _PROBE, *map(str, args)], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout.strip().splitlines()[-1] == "True"


def test_a_default_format_file_decodes_without_torch():
    assert not _imports_torch(VEC / "v7-rgb-latent-learned.inr",
                              VEC / "tiny-latent-learned-model.safetensors")


def test_the_command_line_decodes_a_latent_file_without_torch(tmp_path):
    code = ("import sys, runpy; sys.argv = ['inrcodec', 'decode', sys.argv[1], sys.argv[2], "
            "'--model', sys.argv[3]]\n"
            "try:\n    runpy.run_module('inrcodec.cli', run_name='__main__')\n"
            "except SystemExit as e:\n    assert not e.code, e.code\n"
            "print('torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code, str(VEC / "v7-rgb-latent-learned.inr"),
                        str(tmp_path / "out.png"),
                        str(VEC / "tiny-latent-learned-model.safetensors")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == "False"
    assert (tmp_path / "out.png").stat().st_size > 0


def test_files_that_need_torch_still_decode_with_it():
    assert _imports_torch(VEC / "v3-rgb-latent.inr")  # bilinear upsampling
    assert _imports_torch(VEC / "v5-rgba.inr", VEC / "tiny-model.safetensors")  # weight mode

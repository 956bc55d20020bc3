"""What a call costs before its first pixel: decoding a latent-mode file (learned or
bilinear upsampling, at its own size or another), by the API or the command line, imports
no torch, which alone took about 1 s of a CLI call. The weight mode runs on torch and
still works."""
import subprocess
import sys
from pathlib import Path

VEC = Path(__file__).resolve().parents[1] / "bitstream_spec" / "vectors"

_PROBE = """
import sys
import inrcodec
from inrcodec.cli import main
data, model = open(sys.argv[1], "rb").read(), sys.argv[2] if len(sys.argv) > 2 else None
inrcodec.decode_array(data, model=model)
inrcodec.decode_array(data, (57, 31), model=model)
print("torch" in sys.modules)
"""


def _imports_torch(*args) -> bool:
    r = subprocess.run([sys.executable, "-c", _PROBE, *map(str, args)], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout.strip().splitlines()[-1] == "True"


def test_a_latent_file_decodes_without_torch():
    assert not _imports_torch(VEC / "v7-rgb-latent-learned.inr",
                              VEC / "tiny-latent-learned-model.safetensors")
    assert not _imports_torch(VEC / "v3-rgb-latent.inr")  # bilinear, self-contained


def _cli_decode(tmp_path, call: str, after: str) -> list[str]:
    """`inrcodec decode` of the learned-upsampling vector in a fresh interpreter, entered
    by `call`, then `after`: the lines it printed."""
    code = ("import sys; sys.argv = ['inrcodec', 'decode', sys.argv[1], sys.argv[2], "
            "'--model', sys.argv[3]]\n"
            f"try:\n    {call}\n"
            "except SystemExit as e:\n    assert not e.code, e.code\n" + after)
    r = subprocess.run([sys.executable, "-c", code, str(VEC / "v7-rgb-latent-learned.inr"),
                        str(tmp_path / "out.png"),
                        str(VEC / "tiny-latent-learned-model.safetensors")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "out.png").stat().st_size > 0
    return r.stdout.strip().splitlines()


def test_the_command_line_decodes_a_latent_file_without_torch(tmp_path):
    lines = _cli_decode(tmp_path, "import runpy; runpy.run_module('inrcodec.cli', "
                        "run_name='__main__')", "print('torch' in sys.modules)")
    assert lines[-1] == "False"


def test_a_weight_mode_file_still_decodes_with_torch():
    assert _imports_torch(VEC / "v5-rgba.inr", VEC / "tiny-model.safetensors")


def test_the_console_script_skips_numbas_blas_probe(tmp_path):
    """numba's first compile imports scipy.linalg to look for a BLAS (0.15 s of a CLI
    call); the console script answers it with no, and scipy.linalg still imports after."""
    lines = _cli_decode(tmp_path, "from inrcodec.cli import run; run()",
                        "print('scipy.linalg' in sys.modules)\nimport scipy.linalg\n"
                        "print(scipy.linalg.inv([[2.0]])[0][0])")
    assert lines[-2:] == ["False", "0.5"]

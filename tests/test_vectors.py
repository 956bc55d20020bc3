"""The committed test vectors pin the exact bytes of format versions 1 and 2."""
import hashlib
import json
import re
import struct
from pathlib import Path

import pytest

import inrcodec
from inrcodec import bitstream

SPEC = Path(__file__).parent.parent / "bitstream_spec"
VEC = SPEC / "vectors"
EXPECTED = json.loads((VEC / "expected.json").read_text())
NAMES = sorted(EXPECTED["vectors"])


def test_model_files_are_the_ones_named():
    data = (VEC / EXPECTED["model"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == EXPECTED["model_sha256"]
    for name, sha in EXPECTED["models"].items():
        assert hashlib.sha256((VEC / name).read_bytes()).hexdigest() == sha


def test_both_versions_are_pinned():
    versions = {v["header"]["version"] for v in EXPECTED["vectors"].values()}
    assert versions == {"1", "2"}
    coders = {v["header"].get("coder") for v in EXPECTED["vectors"].values()}
    assert {"0 (zstd)", "1 (range)"} <= coders


@pytest.mark.parametrize("name", NAMES)
def test_vector_decodes_exactly(name):
    v = EXPECTED["vectors"][name]
    data = (VEC / f"{name}.inr").read_bytes()
    assert hashlib.sha256(data).hexdigest() == v["inr_sha256"]
    fields = {k: val for k, val, _ in inrcodec.info(data)["fields"]}
    assert fields == v["header"]
    dec = inrcodec.decode_array(data, model=VEC / v["model"])
    assert list(dec.shape) == v["decoded_shape"]
    assert hashlib.sha256(dec.tobytes()).hexdigest() == v["decoded_sha256"]


@pytest.mark.parametrize("name", NAMES)
def test_encoder_reproduces_vector_bytes(name):
    v = EXPECTED["vectors"][name]
    data = inrcodec.encode(VEC / v["source"], model=VEC / v["model"], level=v["level"],
                           **EXPECTED["settings"], **v["options"])
    assert data == (VEC / f"{name}.inr").read_bytes()


@pytest.mark.parametrize("version", [1, 2])
def test_spec_table_matches_header_fields(version):
    text = (SPEC / "README.md").read_text()
    section = text.split(f"### Version {version} header")[1].split("###")[0]
    rows = re.findall(r"^\| (\d+) \| `(\w+)` \| ([^|]+) \| ([^|]+) \|$", section, re.M)
    off = 0
    expect = []
    for f in bitstream.LAYOUTS[version]:
        expect.append((str(off), f.name, f.meaning))
        off += struct.calcsize("<" + f.fmt)
    assert [(o, n, m.strip()) for o, n, _, m in rows] == expect
    assert off == bitstream.HEADER_SIZES[version]

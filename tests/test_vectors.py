"""The committed test vectors pin the exact bytes of format version 1."""
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


def test_model_file_is_the_one_named():
    data = (VEC / EXPECTED["model"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == EXPECTED["model_sha256"]


@pytest.mark.parametrize("name", NAMES)
def test_vector_decodes_exactly(name):
    v = EXPECTED["vectors"][name]
    data = (VEC / f"{name}.inr").read_bytes()
    assert hashlib.sha256(data).hexdigest() == v["inr_sha256"]
    fields = {k: val for k, val, _ in inrcodec.info(data)["fields"]}
    assert fields == v["header"]
    dec = inrcodec.decode_array(data, model=VEC / EXPECTED["model"])
    assert list(dec.shape) == v["decoded_shape"]
    assert hashlib.sha256(dec.tobytes()).hexdigest() == v["decoded_sha256"]


@pytest.mark.parametrize("name", NAMES)
def test_encoder_reproduces_vector_bytes(name):
    v = EXPECTED["vectors"][name]
    data = inrcodec.encode(VEC / v["source"], model=VEC / EXPECTED["model"], level=v["level"],
                           **EXPECTED["settings"])
    assert data == (VEC / f"{name}.inr").read_bytes()


def test_spec_table_matches_header_fields():
    text = (SPEC / "README.md").read_text()
    rows = re.findall(r"^\| (\d+) \| `(\w+)` \| ([^|]+) \| ([^|]+) \|$", text, re.M)
    off = 0
    expect = []
    for f in bitstream.FIELDS:
        expect.append((str(off), f.name, f.meaning))
        off += struct.calcsize("<" + f.fmt)
    assert [(o, n, m.strip()) for o, n, _, m in rows] == expect
    assert off == bitstream.HEADER_SIZE

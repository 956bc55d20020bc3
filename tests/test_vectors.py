"""The committed test vectors pin the exact bytes of format versions 1 to 5.

What must be identical on every machine is pinned against the vectors: the header, the
decoder's pixels, and the bytes the writer lays out (container and entropy-coded payload)
for the stored integers. The encoder's fit is float arithmetic whose last bits differ from
one CPU to the next, so its bytes are only pinned on the machine that runs the test:
re-encoding gives identical bytes.
"""
import hashlib
import json
import re
import struct
from pathlib import Path

import numpy as np
import pytest

import inrcodec
from inrcodec.codec import bitstream, entropy
from inrcodec.codec.latent import format as lformat
from inrcodec.codec.weights import format as wformat
from inrcodec.codec.weights.quantiser import DELTA, DeltaQuantiser, Fp16Quantiser, Payload
from inrcodec.model.shared_model import load_model

SPEC = Path(__file__).parent.parent / "bitstream_spec"
VEC = SPEC / "vectors"
EXPECTED = json.loads((VEC / "expected.json").read_text())
NAMES = sorted(EXPECTED["vectors"])


def test_model_files_are_the_ones_named():
    data = (VEC / EXPECTED["model"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == EXPECTED["model_sha256"]
    for name, sha in EXPECTED["models"].items():
        assert hashlib.sha256((VEC / name).read_bytes()).hexdigest() == sha


def test_every_version_is_pinned():
    versions = {v["header"]["version"] for v in EXPECTED["vectors"].values()}
    assert versions == {str(v) for v in bitstream.versions()} == {"1", "2", "3", "4", "5", "6", "7"}
    coders = {v["header"].get("coder") for v in EXPECTED["vectors"].values()}
    assert {"0 (zstd)", "1 (range)"} <= coders


@pytest.mark.parametrize("name", NAMES)
def test_vector_decodes_exactly(name):
    v = EXPECTED["vectors"][name]
    data = (VEC / f"{name}.inr").read_bytes()
    assert hashlib.sha256(data).hexdigest() == v["inr_sha256"]
    fields = {k: val for k, val, _ in inrcodec.info(data)["fields"]}
    assert fields == v["header"]
    dec = inrcodec.decode_array(data, model=VEC / v["model"] if v["model"] else None)
    assert list(dec.shape) == v["decoded_shape"]
    assert hashlib.sha256(dec.tobytes()).hexdigest() == v["decoded_sha256"]


@pytest.mark.parametrize("name", NAMES)
def test_writer_reproduces_vector_bytes(name):
    """The stored values, coded and laid out again, give the vector byte for byte: what
    the writer does after the fit is the same on every machine."""
    v = EXPECTED["vectors"][name]
    data = (VEC / f"{name}.inr").read_bytes()
    h = bitstream.verify(data)
    if isinstance(h, lformat.LatentHeader):
        return _latent_writer_reproduces(data, h, v["model"])
    if isinstance(h, wformat.TileHeader):
        return _tiles_writer_reproduces(data, h, v["model"])
    m = load_model(VEC / v["model"])
    payload = wformat.coded_payload(data, h)
    if h.quantizer == DELTA:
        net = m.net(h.level)
        dq = DeltaQuantiser.from_qparams(net, m.levels[h.level].theta0,
                                         wformat.qparams_section(data, h), h.level)
        q = entropy.decode(payload, h.n_tiles, dq.gid, h.coder, h.qbits)
        recoded = Payload(DELTA, h.qbits, h.coder, dq.qparams(),
                          entropy.encode(q, dq.gid, h.coder, h.qbits))
    else:
        recoded = Fp16Quantiser.payload(Fp16Quantiser.values(payload, h.n_tiles, h.n_params))
    assert recoded.data == payload
    alpha = bitstream.alpha_section(data, h) or None
    again = wformat.write_file(version=h.version, model_hash=h.model_hash.hex(), width=h.width,
                            height=h.height, image_mode=h.image_mode_name, level=h.level, tile=h.tile,
                            n_params=h.n_params, payload=recoded, alpha_plane=alpha)
    assert again == data


def _tiles_writer_reproduces(data, h, model_name):
    """Version 5: the decoded options, tile map and integers, coded again, give every
    section back, and the container gives the file."""
    from inrcodec.codec.weights import tilecode
    m = load_model(VEC / model_name)
    sections = [bitstream.section(data, h, k) for k in ("options", "map", "payload")]
    options, choice, qs = tilecode.decode(m, *sections, h.options, h.n_tiles)
    assert list(tilecode.encode(m, options, choice, qs)) == sections
    alpha = bitstream.alpha_section(data, h) or None
    assert wformat.write_tiles(model_hash=h.model_hash.hex(), width=h.width, height=h.height,
                                 image_mode=h.image_mode_name, tile=h.tile, n_options=h.options,
                                 options=sections[0], tile_map=sections[1],
                                 payload=sections[2], alpha_plane=alpha) == data


def _latent_writer_reproduces(data, h, model_name):
    """Versions 3, 4, 6 and 7: the decoded integers, coded again with the file's (or its shared
    model's) parameters, give every section back, and the container gives the file."""
    from inrcodec.codec import prior
    from inrcodec.codec.latent import arm
    from inrcodec.codec.latent import format as latent
    from inrcodec.codec.latent.layout import grid_shapes
    from inrcodec.codec.latent.model import LatentModel
    m = LatentModel.load(VEC / model_name) if model_name else None
    a = m.arch if m else latent.arch_of(h)
    base = m.thetas[h.level] if m else None
    mask = m.masks[h.level] if m else None
    synth = bitstream.section(data, h, "synthesis")
    if synth:
        entries = latent._entries(a, mask)
        heads = [struct.unpack_from("<BHH", synth, 5 * i) for i in range(len(entries))]
        theta = latent.unpack_synthesis(synth, a, base, mask).astype(np.float64)
        d = theta - (0.0 if base is None else base.astype(np.float64))
        ints = [np.round(d[i] * (1 << k)).astype(np.int64) for i, (k, _, _) in zip(entries, heads)]
        again = synth[:5 * len(entries)] + prior.encode_tensors(ints, [(m_, q) for _, m_, q in heads])
        assert again == synth
    own = bitstream.section(data, h, "arm")
    params = arm.ArmParams.from_bytes(own) if own else arm.ArmParams(*m.arm)
    if own:
        assert params.to_bytes() == own
    lat = bitstream.section(data, h, "latents")
    grids = arm.decode_section(lat, grid_shapes(h.height, h.width, h.levels), params, h.binned)
    assert arm.encode_section(grids, params, h.binned) == lat
    alpha = bitstream.alpha_section(data, h) or None
    assert lformat.write(
        model_hash=h.model_hash, width=h.width, height=h.height, image_mode=h.image_mode_name,
        levels=h.levels, hidden=h.hidden, layers=h.layers,
        act=lformat.ACTIVATIONS[h.act], w0=h.w0, synthesis=synth, arm=own, latents=lat,
        alpha_plane=alpha, level=h.level, coords=bool(h.coords),
        upsample=lformat.UPSAMPLINGS[h.upsample], version=h.version) == data


@pytest.mark.parametrize("name", ["v1-rgb", "v2-rgba-range", "v2-rgb-zstd", "v5-rgba"])
def test_reencoding_is_deterministic_on_this_machine(name):
    v = EXPECTED["vectors"][name]
    settings = {"seed": 0} if v["options"].get("format_version") == 5 else EXPECTED["settings"]
    kw = dict(model=VEC / v["model"], level=v["level"], **settings, **v["options"])
    a = inrcodec.encode(VEC / v["source"], **kw, mode=v["options"].get("mode", "weights"))
    assert inrcodec.encode(VEC / v["source"], **kw, mode=v["options"].get("mode", "weights")) == a
    fields = {k: val for k, val, _ in inrcodec.info(a)["fields"]}
    same = [k for k in ("version", "mode", "level", "quantizer", "width", "height", "n_params",
                        "options") if k in v["header"]]
    assert {k: fields[k] for k in same} == {k: v["header"][k] for k in same}


@pytest.mark.parametrize("version", [1, 2, 3, 4, 5])
def test_spec_table_matches_header_fields(version):
    text = (SPEC / "README.md").read_text()
    section = text.split(f"### Version {version} header")[1].split("###")[0]
    rows = re.findall(r"^\| (\d+) \| `(\w+)` \| ([^|]+) \| ([^|]+) \|$", section, re.M)
    off = 0
    expect = []
    for f in bitstream.layout(version):
        expect.append((str(off), f.name, f.meaning))
        off += struct.calcsize("<" + f.fmt)
    assert [(o, n, m.strip()) for o, n, _, m in rows] == expect
    assert off == bitstream.header_size(version)


def test_version_6_header_is_version_4s():
    """The spec gives version 6's header as version 4's field for field."""
    v4, v6 = bitstream.layout(4), bitstream.layout(6)
    assert [(f.name, f.fmt) for f in v4] == [(f.name, f.fmt) for f in v6]
    assert [f.meaning for f in v4 if f.name != "version"] == \
        [f.meaning for f in v6 if f.name != "version"]

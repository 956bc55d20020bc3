"""Hostile input to the decoder and the shared-model loader.

Every malformed .inr or model file must end in an InrcodecError subclass: never another
exception, a hang or an allocation sized by a lie in the file. Longer runs of the same
generators: benchmarks/fuzz_decoder.py.
"""
from __future__ import annotations

import collections
import dataclasses
import json
import pickle
import random
import struct
import tracemalloc

import malformed
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

import inrcodec
from inrcodec import api
from inrcodec.codec import bitstream, entropy
from inrcodec.codec.weights import codec as wcodec
from inrcodec.codec.weights import format as wformat
from inrcodec.errors import (ChecksumError, FormatError, InrcodecError, ModelError,
                             ModelMismatchError)
from inrcodec.model.file import data_digest
from inrcodec.model.inr import Arch
from inrcodec.model.shared_model import SharedModel, scratch_model

TALLY: collections.Counter = collections.Counter()


V1 = dict(quantizer="fp16", format_version=1)
V2 = ["rgb2z", "rgb2r", "rgba2r", "rgb2r16"]


@pytest.fixture(scope="module")
def files(tiny_model, rgb_image_module):
    """Small valid files: version 1 (fp16) RGB (no alpha) and RGBA (with an alpha section);
    version 2 delta files coded by zstd (z) and by the range coder (r), one with 16-bit
    integers."""
    rgba = np.concatenate(
        [rgb_image_module, (np.arange(28 * 40) % 251).reshape(28, 40, 1).astype(np.uint8)], 2)
    out = {"rgb": api.encode(rgb_image_module, model=tiny_model, steps=2, mode="weights", **V1),
           "rgba": api.encode(rgba, model=tiny_model, steps=2, mode="weights", **V1),
           "rgb2z": api.encode(rgb_image_module, model=tiny_model, steps=4, lr=1e-2, coder="zstd", mode="weights", format_version=2),
           "rgb2r": api.encode(rgb_image_module, model=tiny_model, steps=4, lr=1e-2,
                               coder="range", mode="weights", format_version=2),
           "rgba2r": api.encode(rgba, model=tiny_model, steps=4, lr=1e-2, coder="range", mode="weights", format_version=2),
           "rgb2r16": api.encode(rgb_image_module, model=tiny_model, steps=4, lr=1e-2,
                                 coder="range", step_scale=0.003, mode="weights", format_version=2)}
    for name in V2:
        h = bitstream.unpack_header(out[name])
        assert (h.version, h.quantizer, h.coder) == (2, 1, 0 if name.endswith("z") else 1)
    assert bitstream.unpack_header(out["rgb2r16"]).qbits == 16
    return out


@pytest.fixture(scope="module")
def rgb_image_module():
    y, x = np.mgrid[0:28, 0:40].astype(np.float32)
    a = np.stack([0.5 + 0.5 * np.sin(x / 6.0), 0.5 + 0.5 * np.cos(y / 5.0), (x + y) / 66.0], -1)
    return np.clip(np.round(a * 255), 0, 255).astype(np.uint8)


def _attempt(fn, data: bytes) -> str:
    try:
        fn()
    except InrcodecError as e:
        return type(e).__name__
    except Exception as e:  # what this file hunts for
        raise AssertionError(f"{type(e).__name__}: {e} on a {len(data)}-byte input "
                             f"starting {data[:96].hex()}") from e
    return "ok"


def outcome(data: bytes, model, *, full: bool = False) -> str:
    """Run one input through the decoder: 'ok' or the InrcodecError class name.

    full=False runs wcodec.read and the alpha section (everything but rendering, fast);
    full=True runs inrcodec.decode itself. api.info must fail as cleanly either way.
    """
    def read():
        wcodec.read(data, model=model)
        bitstream.alpha_section(data, bitstream.verify(data))  # the alpha section too

    o = _attempt((lambda: inrcodec.decode(data, model=model)) if full else read, data)
    _attempt(lambda: api.info(data), data)
    TALLY[o] += 1
    return o


def run_all(items, model, *, full=False) -> collections.Counter:
    c = collections.Counter()
    for kind, data in items:
        c[kind, outcome(data, model, full=full)] += 1
    return c


def total(c: collections.Counter) -> int:
    return sum(c.values())


# -- the fuzz loops (thousands of files, a few seconds) ------------------------------------
def test_valid_files_decode(files, tiny_model):
    for data in files.values():
        assert outcome(data, tiny_model, full=True) == "ok"


@pytest.mark.parametrize("name", ["rgb", "rgba"] + V2)
def test_truncated_at_every_offset(files, tiny_model, name):
    c = run_all(malformed.truncations(files[name]), tiny_model)
    assert all(o != "ok" for _, o in c), c
    assert total(c) == len(files[name]) + 2
    print(f"truncations {name}: {total(c)}")


@pytest.mark.parametrize("name", ["rgb", "rgba"] + V2)
def test_bit_flips_hit_the_checksum(files, tiny_model, name):
    n = 1500 if name in ("rgb", "rgba") else 500
    c = run_all(malformed.bit_flips(files[name], random.Random(1), n, valid_crc=False),
                tiny_model)
    # CRC-32 catches every burst of up to 32 bits; a flip in the header may be caught earlier.
    assert all(o in ("ChecksumError", "FormatError") for _, o in c), c
    print(f"bit flips {name}: {total(c)}")


@pytest.mark.parametrize("name", ["rgb", "rgba"] + V2)
def test_bit_flips_with_valid_crc(files, tiny_model, name):
    data = files[name]
    n = 1500 if name in ("rgb", "rgba") else 500
    c = run_all(malformed.bit_flips(data, random.Random(2), n, valid_crc=True), tiny_model)
    # and a sample all the way through rendering
    c += run_all(malformed.bit_flips(data, random.Random(3), 60, valid_crc=True), tiny_model,
                 full=True)
    assert not any(o == "ChecksumError" for _, o in c)
    print(f"bit flips with valid CRC {name}: {total(c)} {dict(c)}")


def test_random_bytes(tiny_model):
    c = run_all(malformed.random_files(random.Random(4), 3000), tiny_model)
    assert all(o != "ok" for _, o in c)
    print(f"random files: {total(c)}")


@pytest.mark.parametrize("name", ["rgb", "rgba"] + V2)
def test_header_fields_with_valid_crc(files, tiny_model, name):
    n = 1500 if name in ("rgb", "rgba") else 500
    c = run_all(malformed.header_fields(files[name], random.Random(5), n), tiny_model)
    c += run_all(malformed.header_fields(files[name], random.Random(6), 100), tiny_model,
                 full=True)
    assert not any(o == "ChecksumError" for _, o in c)
    print(f"header fields {name}: {total(c)}")


@pytest.mark.parametrize("name", ["rgb", "rgba"] + V2)
def test_damaged_sections_with_valid_crc(files, tiny_model, name):
    c = collections.Counter()
    for seed in range(8):
        c += run_all(malformed.section_variants(files[name], random.Random(seed)), tiny_model,
                     full=True)
    for (kind, o), n in c.items():
        if kind.startswith(("zstd:", "payload:", "alpha:", "quantizer", "version", "n_params",
                            "range:", "qparams:", "coder")):
            assert o == "FormatError", (kind, o)
    print(f"damaged sections {name}: {total(c)}")


INT_FIELDS = [f for f in malformed.NAMES if malformed.FMTS[f] not in ("4s", "32s")]


@settings(max_examples=1000, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_header_fields_hypothesis(files, tiny_model, data):
    name = data.draw(st.sampled_from(["rgb", "rgba"] + V2))
    f, p, a = malformed.parts(files[name])
    for field in data.draw(st.sets(st.sampled_from(INT_FIELDS), min_size=1, max_size=4)):
        f[field] = data.draw(st.one_of(
            st.integers(0, 3), st.integers(0, malformed.field_max(field)),
            st.integers(max(0, f[field] - 2), min(malformed.field_max(field), f[field] + 2))))
    o = outcome(malformed.build(f, p, a, fix_lengths=data.draw(st.booleans())), tiny_model)
    assert o != "ChecksumError"


def test_zz_fuzz_total():
    """How many .inr inputs the loops above ran (when run whole: see -s output)."""
    print(f"test_hostile ran {sum(TALLY.values())} .inr inputs: {dict(TALLY)}")


# -- specific malformed files, each with a valid CRC -----------------------------------------
def _variant(files, name="rgb", payload=None, alpha=None, **fields):
    f, p, a = malformed.parts(files[name])
    f.update(fields)
    return malformed.build(f, p if payload is None else payload, a if alpha is None else alpha)


@pytest.mark.parametrize("fields, message", [
    (dict(version=8), "version 8 is not supported"),
    (dict(version=6), "latent|truncated|impossible|out of range|invalid"),  # read as v6
    (dict(version=7), "latent|truncated|impossible|out of range|invalid"),  # read as v7
    (dict(version=3), "latent|truncated|impossible|out of range|invalid"),  # a weight header read as v3
    (dict(version=0), "version 0"),
    (dict(quantizer=1), "unknown quantiser"),
    (dict(flags=2), "unknown flag bits"),
    (dict(image_mode=4), "unknown image mode"),
    (dict(image_mode=3), "alpha flag disagrees"),
    (dict(image_mode=1), "alpha flag disagrees"),
    (dict(width=0, tiles_x=0), "outside 1..65536"),
    (dict(width=70000, tiles_x=4375), "outside 1..65536"),
    (dict(width=65536, height=65536, tiles_x=4096, tiles_y=4096), "exceeds the limit"),
    (dict(width=16384, height=16384, tile=2, tiles_x=8192, tiles_y=8192), "exceeds the limits"),
    (dict(width=16384, height=16384, tiles_x=1024, tiles_y=1024), "exceeds the limits"),
    (dict(n_params=0), "at least one value"),
    (dict(n_params=0xFFFFFFFF), "exceeds the limits"),
    (dict(tiles_x=1), "tile grid"),
    (dict(tile=1), "tile size 1 is invalid"),
    (dict(tile=8, tiles_x=5, tiles_y=4), "differs from the model"),
    (dict(level=9), "the model has 4 levels"),
    (dict(level=0), "values per tile"),
])
def test_bad_header_fields(files, tiny_model, fields, message):
    with pytest.raises(FormatError, match=message):
        inrcodec.decode(_variant(files, **fields), model=tiny_model)


def _refused_within_16mb(data, model, match):
    """Decoding `data` raises FormatError(match) with a peak allocation under 16 MB."""
    tracemalloc.start()
    try:
        with pytest.raises(FormatError, match=match):
            inrcodec.decode(data, model=model)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20


def test_absurd_size_fails_before_allocating(files, tiny_model):
    """8192x8192 is within the format's limits; a tiny payload cannot hold its 225 MB."""
    f, p, a = malformed.parts(files["rgb"])
    f.update(width=8192, height=8192, tiles_x=512, tiles_y=512)
    _refused_within_16mb(malformed.build(f, p), tiny_model, "cannot hold")


def test_bomb_payload_stops_at_the_declared_size(files, tiny_model):
    """A frame of 256 MB of zeros in place of a 5 kB payload: refused, with little memory."""
    _refused_within_16mb(_variant(files, payload=malformed.bomb()), tiny_model,
                         "payload does not decompress")


def test_alpha_bomb(files, tiny_model):
    with pytest.raises(FormatError, match="alpha plane"):
        inrcodec.decode(_variant(files, "rgba", alpha=malformed.bomb()), model=tiny_model)


def _fp16_payload(data: bytes):
    """(header, decompressed fp16 payload) of an fp16 file."""
    h = bitstream.verify(data)
    return h, entropy.unzstd(wformat.coded_payload(data, h), 2 * h.n_tiles * h.n_params,
                             "payload")


def test_payload_larger_than_declared(files, tiny_model):
    _, raw = _fp16_payload(files["rgb"])
    for cs in (True, False):
        bad = malformed._z(raw + raw[:10], content_size=cs)
        with pytest.raises(FormatError, match="payload"):
            inrcodec.decode(_variant(files, payload=bad), model=tiny_model)


def test_trailing_data_in_a_section(files, tiny_model):
    f, p, a = malformed.parts(files["rgb"])
    with pytest.raises(FormatError, match="unused data|does not decompress"):
        inrcodec.decode(malformed.build(f, p + p), model=tiny_model)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values(files, tiny_model, bad):
    _, raw = _fp16_payload(files["rgb"])
    vals = np.frombuffer(raw, "<f2").copy()
    vals[17] = bad
    with pytest.raises(FormatError, match="non-finite"):
        inrcodec.decode(_variant(files, payload=malformed._z(vals.tobytes())), model=tiny_model)


def test_unknown_version_quantiser_via_pack(files):
    """wformat.pack itself refuses to write what the reader would refuse."""
    h = bitstream.unpack_header(files["rgb"])
    for change in (dict(version=3), dict(quantizer=7), dict(quantizer=1), dict(image_mode=9)):
        with pytest.raises(FormatError):
            wformat.pack(dataclasses.replace(h, **change), b"\0" * h.payload_len)
    h2 = bitstream.unpack_header(files["rgb2r"])
    for change in (dict(coder=2), dict(qbits=12), dict(quantizer=0), dict(qparams_len=0),
                   dict(payload_len=h2.payload_len + 1)):
        with pytest.raises(FormatError):
            h3 = dataclasses.replace(h2, **change)
            wformat.pack(h3, b"\0" * h3.payload_len, qparams=b"\0" * h3.qparams_len)


@pytest.mark.parametrize("name", ["rgb2z", "rgb2r"])
def test_absurd_size_v2_fails_before_allocating(files, tiny_model, name):
    """A version-2 header claiming 8192x8192 over a payload made for 40x28."""
    f, p, a = malformed.parts(files[name])
    f.update(width=8192, height=8192, tiles_x=512, tiles_y=512)
    _refused_within_16mb(malformed.build(f, p), tiny_model, "cannot hold")


def test_range_payload_must_be_canonical(files, tiny_model):
    """Words after the coder's own output decode to the same values, and are refused."""
    f, p, a = malformed.parts(files["rgb2r"])
    for extra in (bytes(4), b"\xff" * 4, p[-4:]):
        with pytest.raises(FormatError, match="canonical"):
            inrcodec.decode(malformed.build(f, p + extra), model=tiny_model)


@pytest.mark.parametrize("bad, message", [
    (0.0, "positive"), (-1.0, "positive"), (np.inf, "finite"), (np.nan, "finite"),
    (1e6, "at most"),
])
def test_bad_step_sizes(files, tiny_model, bad, message):
    f, p, a = malformed.parts(files["rgb2r"])
    qp = np.frombuffer(f.pop("qparams_bytes"), "<f4").copy()
    qp[1] = bad
    with pytest.raises(FormatError, match=message):
        inrcodec.decode(malformed.build(f, p, qparams=qp.astype("<f4").tobytes()),
                        model=tiny_model)


def test_step_count_must_match_the_model(files, tiny_model):
    f, p, a = malformed.parts(files["rgb2z"])
    qp = f.pop("qparams_bytes")
    for wrong in (qp[:-4], qp + qp[:4]):
        with pytest.raises(FormatError, match="step sizes"):
            inrcodec.decode(malformed.build(f, p, qparams=wrong), model=tiny_model)


def test_scale_overflow(files, tiny_model):
    with pytest.raises(InrcodecError, match="scale"):
        inrcodec.decode(files["rgb"], model=tiny_model, scale=1e308)


def test_reading_a_device_file_does_not_hang(tmp_path):
    with pytest.raises(InrcodecError, match="not a regular file"):
        api.read_inr("/dev/zero")
    with pytest.raises(InrcodecError, match="is a directory"):
        api.read_inr(tmp_path)


# -- shared models -------------------------------------------------------------------------
def _model_parts(data: bytes):
    (n,) = struct.unpack("<Q", data[:8])
    return dict(json.loads(json.loads(data[8:8 + n])["__metadata__"]["inrcodec"])), st_load(data)


def _rebuild(tensors, meta, *, fix_digest=True) -> bytes:
    meta = dict(meta)
    if fix_digest and all(t.dtype != torch.bfloat16 for t in tensors.values()):
        meta["data_sha256"] = data_digest(tensors)
    return st_save(tensors, metadata={"inrcodec": json.dumps(meta)})


def _arch(meta, **kw):
    a = json.loads(meta["arch"])
    a.update(kw)
    return dict(meta, arch=json.dumps(a))


def test_model_bytes_are_deterministic(tiny_model, tiny_model_path):
    assert tiny_model.to_bytes() == tiny_model.to_bytes()
    assert SharedModel.load(tiny_model_path).hash == tiny_model.hash
    assert tiny_model_path.read_bytes() == tiny_model.to_bytes()


def test_model_loading_never_unpickles(tmp_path, files):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps(Evil()))
    torch.save({"x": torch.zeros(3)}, tmp_path / "torch.pt")
    for p in (evil, tmp_path / "torch.pt"):
        with pytest.raises(ModelError):
            inrcodec.decode(files["rgb"], model=p)
    assert not marker.exists()


def test_tampered_tensor_data_is_detected(tiny_model):
    data = bytearray(tiny_model.to_bytes())
    data[-3] ^= 0x10  # inside the last tensor
    with pytest.raises(ModelError, match="digest"):
        SharedModel.from_bytes(bytes(data))


def test_truncated_model_is_detected(tiny_model):
    data = tiny_model.to_bytes()
    for i in list(range(0, 64)) + list(range(64, len(data), 7)):
        with pytest.raises(ModelError):
            SharedModel.from_bytes(data[:i])


def test_every_byte_flip_is_caught_at_load_or_by_the_hash(tiny_model, files):
    """Metadata is not covered by the data digest, but the .inr names the file's SHA-256."""
    data = tiny_model.to_bytes()
    rng = random.Random(6)
    c = collections.Counter()
    for _ in range(600):
        x = bytearray(data)
        p = rng.randrange(len(x))
        x[p] ^= 1 << rng.randrange(8)
        try:
            m = SharedModel.from_bytes(bytes(x))
        except ModelError:
            c["refused"] += 1
            continue
        with pytest.raises(ModelMismatchError, match=tiny_model.hash):
            wcodec.read(files["rgb"], model=m)
        c["mismatch"] += 1
    assert c["refused"] > 500 and c["refused"] + c["mismatch"] == 600
    print(f"model byte flips: {dict(c)}")


def test_tampered_metadata_is_caught_by_the_hash(tiny_model, files):
    data = tiny_model.to_bytes()
    # arch is JSON inside the one metadata string, itself JSON: escaped twice
    old = b'\\\\\\"w0\\\\\\":30.0'
    assert data.count(old) == 1
    m = SharedModel.from_bytes(data.replace(old, old.replace(b"30.0", b"31.0")))
    assert m.arch.w0 == 31.0  # the data digest covers tensors only
    with pytest.raises(ModelMismatchError, match=f"needs shared model {tiny_model.hash}"):
        inrcodec.decode(files["rgb"], model=m)


def test_model_fuzz_through_info(tiny_model):
    data = tiny_model.to_bytes()
    rng = random.Random(7)
    items = [data[:rng.randrange(len(data))] for _ in range(300)]
    for _ in range(300):
        x = bytearray(data)
        for _ in range(rng.choice((1, 3, 20))):
            x[rng.randrange(len(x))] = rng.randrange(256)
        items.append(bytes(x))
    for x in items:
        _attempt(lambda: api.info(x), x)


@pytest.mark.parametrize("change, message", [
    (lambda t, m: (t, _arch(m, width=10 ** 6)), "mask of a"),
    (lambda t, m: (t, _arch(m, family="ffn")), "mask of a"),
    (lambda t, m: (t, _arch(m, in_features=3)), "2 coordinates to 3 colour"),
    (lambda t, m: (t, _arch(m, out_features=1)), "2 coordinates to 3 colour"),
    (lambda t, m: (t, _arch(m, w0="30")), "w0"),
    (lambda t, m: (t, _arch(m, w0=float("nan"))), "w0"),
    (lambda t, m: (t, _arch(m, depth=True)), "depth"),
    (lambda t, m: (t, _arch(m, colour=1)), "unknown architecture fields"),
    (lambda t, m: (t, dict(m, arch="[1]")), "mapping"),
    (lambda t, m: (t, dict(m, tile="100000")), "tile size"),
    (lambda t, m: (t, dict(m, tile="1")), "tile size"),
    (lambda t, m: (t, dict(m, info="[1]")), "info"),
    (lambda t, m: (t, dict(m, n_levels="65")), "levels"),
    (lambda t, m: (t, dict(m, default_level="-1")), "default level"),
    (lambda t, m: (t, dict(m, format_version="2")), "version"),
    (lambda t, m: (t, dict(m, format="other")), "format tag"),
    (lambda t, m: ({k: v for k, v in t.items() if k != "level.01.theta"}, m), "lacks tensor"),
    (lambda t, m: (dict(t, **{"level.00.mask.0": t["level.00.mask.0"].float()}), m), "uint8"),
    (lambda t, m: (dict(t, **{"level.00.mask.0": t["level.00.mask.0"][:1]}), m), "mask of a"),
    (lambda t, m: (dict(t, **{"level.00.theta": t["level.00.theta"].bfloat16()}), m),
     "unsupported type"),
    (lambda t, m: (dict(t, **{"level.00.theta": t["level.00.theta"][:-1]}), m), "values stored"),
    (lambda t, m: (dict(t, **{"level.00.theta": t["level.00.theta"] * np.inf}), m), "finite"),
])
def test_malformed_model_metadata_and_tensors(tiny_model, change, message):
    meta, tensors = _model_parts(tiny_model.to_bytes())
    t, m = change(dict(tensors), meta)
    with pytest.raises(ModelError, match=message):
        SharedModel.from_bytes(_rebuild(t, m))


def test_ffn_fourier_matrix_must_match(tiny_model):
    ffn = scratch_model(Arch(family="ffn", width=8, depth=2, ffn_features=4),
                                 tile=8, n_levels=2)
    meta, tensors = _model_parts(ffn.to_bytes())
    assert SharedModel.from_bytes(ffn.to_bytes()).hash == ffn.hash
    for bad in (torch.zeros(3, 2), torch.full((4, 2), np.nan)):
        with pytest.raises(ModelError, match="Fourier"):
            SharedModel.from_bytes(_rebuild(dict(tensors, fourier=bad), meta))


def test_deeply_nested_model_header():
    body = b"[" * 100_000
    with pytest.raises(ModelError, match="JSON"):
        SharedModel.from_bytes(struct.pack("<Q", len(body)) + body)
    with pytest.raises(FormatError):
        api.info(struct.pack("<Q", len(body)) + body)


def test_missing_model_names_the_hash_needed(files, tiny_model, tmp_path, monkeypatch):
    needed = tiny_model.hash
    with pytest.raises(ModelError, match=f"not found; this file needs shared model {needed}"):
        inrcodec.decode(files["rgb"], model=tmp_path / "nope.safetensors")
    from inrcodec.model import shared_model
    monkeypatch.setattr(shared_model, "weights_model_path", lambda: tmp_path / "gone.safetensors")
    with pytest.raises(ModelError, match=f"missing.*needs shared model {needed}"):
        inrcodec.decode(files["rgb"])


def test_damaged_model_names_the_hash_needed(files, tiny_model, tmp_path):
    p = tmp_path / "damaged.safetensors"
    data = bytearray(tiny_model.to_bytes())
    data[-3] ^= 1
    p.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=f"digest.*needs shared model {tiny_model.hash}"):
        inrcodec.decode(files["rgb"], model=p)


def test_mismatched_model_names_both_hashes(files, tiny_model, tmp_path):
    other = scratch_model(Arch(width=16, depth=3, w0=30.0), tile=16,
                                   n_levels=4, seed=2)
    p = tmp_path / "other.safetensors"
    other.save(p)
    with pytest.raises(ModelMismatchError) as e:
        inrcodec.decode(files["rgb"], model=p)
    assert tiny_model.hash in str(e.value) and other.hash in str(e.value)


def test_encode_with_in_memory_model_then_save_decodes(tmp_path, rgb_image_module):
    """The hash an in-memory model names is the one its saved file has."""
    m = scratch_model(Arch(width=8, depth=2), tile=16, n_levels=2, seed=3)
    data = api.encode(rgb_image_module, model=m, steps=1, mode="weights", format_version=2)
    p = tmp_path / "m.safetensors"
    m.save(p)
    assert inrcodec.decode(data, model=p).size == (40, 28)


def test_checksum_error_is_a_format_error():
    assert issubclass(ChecksumError, FormatError) and issubclass(FormatError, InrcodecError)

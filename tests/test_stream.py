"""The decode pipeline (codec/latent/stream.py): the latents read wavefront by wavefront
(arm.GridReader), the bands rendered on other threads as their rows arrive. Same pixels
as reading first and rendering after, on any number of threads; a damaged payload still
raises, with no thread left behind."""
import threading

import numpy as np
import pytest

import inrcodec
from inrcodec.codec import bitstream
from inrcodec.codec.latent import arm, codec, render, stream
from inrcodec.codec.latent.format import unpack_synthesis
from inrcodec.codec.latent.layout import grid_shapes
from inrcodec.errors import FormatError


def _image(h, w, seed=0):
    y, x = np.mgrid[0:h, 0:w] / 7.0
    base = np.stack([np.sin(x), np.cos(y * 1.3), np.sin(x * y / 5)], -1)
    noise = np.random.default_rng(seed).normal(0, 0.05, base.shape)
    return np.clip((0.4 * base + 0.5 + noise) * 255, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def case():
    """A 150 x 70 file of the shipped model (19 bands), and what decoding it takes. 40 steps:
    at 20 the fit leaves grid 0 all zero, and its words end before grid 1 is whole."""
    data = inrcodec.encode(_image(150, 70), mode="latent", steps=40, quality=80)
    h = bitstream.verify(data)
    m = codec.model_for(h, None)
    theta = unpack_synthesis(bitstream.section(data, h, "synthesis"), m.arch,
                             m.thetas[h.level], m.masks[h.level])
    sec = bitstream.section(data, h, "latents")
    shapes = grid_shapes(h.height, h.width, m.arch.levels)
    params = arm.ArmParams(*m.arm)
    return data, h, m.arch, theta, sec, shapes, params


def test_a_reader_stopped_anywhere_reads_the_same_grids(case):
    *_, sec, shapes, params = case
    whole = arm.decode_section(sec, shapes, params)
    r = arm.section_reader(sec, shapes, params)
    for t in (1, 2, 50, 51, 200, r.waves - 1):
        r.read(t)
        assert r.t == t
        for g, (gh, gw) in enumerate(shapes):
            done = r.rows(g)
            assert np.array_equal(r.grids[g][:done], whole[g][:done])
            if done < gh:  # the next row is not whole yet
                assert 3 * done + gw - 1 >= t
    got = r.finish()
    assert all(np.array_equal(a, b) for a, b in zip(got, whole))


@pytest.mark.parametrize("threads", [2, 3, 5])
@pytest.mark.parametrize("size", [(150, 70), (61, 33), (100, 20)])
def test_the_pipeline_gives_the_pixels_of_read_then_render(case, monkeypatch, threads, size):
    """At the image's own size and at smaller ones."""
    data, h, arch, theta, sec, shapes, params = case
    monkeypatch.setattr(render, "THREADS", 1)
    want = render.render(arch, theta, arm.decode_section(sec, shapes, params), *size)
    monkeypatch.setattr(render, "THREADS", threads)
    monkeypatch.setattr(stream, "WAVES", 7)  # many hand-overs
    got = stream.decode(arm.section_reader(sec, shapes, params), arch, theta, *size)
    assert np.array_equal(got, want)
    assert np.array_equal(inrcodec.decode_array(data, size[::-1]), want)


def test_a_damaged_payload_raises_and_leaves_no_thread_waiting(case, monkeypatch):
    *_, arch, theta, sec, shapes, params = case
    monkeypatch.setattr(render, "THREADS", 3)
    monkeypatch.setattr(stream, "WAVES", 7)
    n = 2 * len(shapes)
    words = (len(sec) - n) // 4
    for k in range(words // 2, words - 2):  # damage that reading finds before grid 0's end
        bad = sec[:n + 4 * k] + bytes(b ^ 0x5A for b in sec[n + 4 * k:n + 4 * k + 4]) \
            + sec[n + 4 * k + 4:]
        r = arm.section_reader(bad, shapes, params)
        h1, w1 = shapes[1]
        if _raises(r.read, 3 * (h1 - 1) + w1):  # grid 1 whole
            continue  # before the bands start
        if _raises(r.read, r.waves):
            break
    else:
        pytest.fail("no damage found mid-read")
    # decode waits for its helpers before it raises: a helper left waiting would hang it
    done = []
    t = threading.Thread(target=lambda: done.append(_raises(stream.decode, arm.section_reader(
        bad, shapes, params), arch, theta, 150, 70)), daemon=True)
    t.start()
    t.join(60)
    assert done == [True]


def _raises(fn, *args) -> bool:
    try:
        fn(*args)
    except FormatError:
        return True
    return False


@pytest.mark.parametrize("all_of_grid0", [False, True])
@pytest.mark.parametrize("size", [(150, 70), (61, 33)])
def test_a_band_reads_only_rows_already_read(case, all_of_grid0, size):
    """Bands.advance hands out only bands whose every input row is read: with the rows
    not yet read set to garbage (and the cascade's rows not yet computed NaN, which even
    a zero tap shows), the bands it allows are the finished image's. With all of grid 0
    read, the coarser grids' rows are what holds the bands back."""
    *_, arch, theta, sec, shapes, params = case
    grids = arm.decode_section(sec, shapes, params)
    want = render.render(arch, theta, grids, *size)
    handed = []
    for t in range(100, 360, 9):
        rows = [min(h, max(0, -(-(t - w + 1) // 3))) for h, w in shapes]
        if all_of_grid0:
            rows[0] = 150
        partial = [g.copy() for g in grids]
        for g, r in zip(partial, rows):
            g[r:] = 99
        bands = render.Bands(arch, theta, partial, *size, complete=False)
        for x in bands.coarse.stacks:
            x[:] = np.nan
        ready = bands.advance(rows)
        handed.append(ready)
        if ready:
            bands(0, ready)
            end = bands.rows(ready - 1)
            assert np.array_equal(bands.image()[:end], want[:end]), t
    assert 0 < max(handed) and min(handed) < bands.n

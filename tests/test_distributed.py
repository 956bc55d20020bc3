"""torch.distributed runs on the CPU with gloo and 2 processes: meta-training and encoding."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as tdist
import torch.multiprocessing as mp
from PIL import Image
from synthetic import sine_signals

import inrcodec
from inrcodec import batch as bulk
from inrcodec.distributed import DataParallel
from inrcodec.model.inr import Arch
from inrcodec.model.shared_model import SharedModel
from inrcodec.training.config import MetaConfig
from inrcodec.training.meta import train_meta_sparse

ARCH = Arch(width=12, depth=2, w0=30.0)
T = 8
# meta-batch 3 over 2 ranks: an uneven split (2 tasks and 1), to test the weighting
# val_every: early stopping inside phases, decided on rank 0's validation by every rank
CFG = MetaConfig(meta_batch=3, inner_steps=2, pretrain_steps=5, retrain_steps=3, rounds=2,
                 first_order=False, outer_lr=1e-3, val_every=2)


def _signals(n, seed, size=T):
    return sine_signals(n, seed, size)


def _join(rank, world, store):
    torch.set_num_threads(1)
    tdist.init_process_group("gloo", init_method=f"file://{store}", rank=rank,
                             world_size=world)
    return DataParallel(rank=rank, world_size=world)


def _meta_worker(rank, world, store, out):
    dist = _join(rank, world, store)
    try:
        m = train_meta_sparse(ARCH, T, _signals(20, 2), _signals(2, 3), CFG, Path(out),
                              dist=dist)
        torch.save({"theta": [lv.theta0 for lv in m.levels]},
                   Path(out).with_name(f"rank{rank}.pt"))
    finally:
        tdist.destroy_process_group()


def _encode_worker(rank, world, store, src, dst, model, batch_pixels):
    dist = _join(rank, world, store)
    try:
        r = inrcodec.encode_dataset(src, dst, model=model, steps=3, batch_pixels=batch_pixels,
                                    dist=dist, mode="weights", format_version=2)
        Path(dst).joinpath(f".report{rank}").write_text(json.dumps(r.summary()))
    finally:
        tdist.destroy_process_group()


def _spawn(fn, *args, world=2, tmp_path):
    # a fresh rendezvous file per group: gloo's file store is not reusable
    store = tmp_path / f"store{len(list(tmp_path.glob('store*')))}"
    mp.start_processes(fn, args=(world, str(store), *args), nprocs=world, join=True,
                       start_method="spawn")


def test_two_process_meta_training_matches_single_process(tmp_path):
    single = train_meta_sparse(ARCH, T, _signals(20, 2), _signals(2, 3), CFG,
                               tmp_path / "single.safetensors")
    out = tmp_path / "dp" / "model.safetensors"
    out.parent.mkdir()
    _spawn(_meta_worker, str(out), tmp_path=tmp_path)
    dp = SharedModel.load(out)
    assert len(dp.levels) == len(single.levels) == CFG.rounds + 1
    for a, b in zip(single.levels, dp.levels):
        for ma, mb in zip(a.masks, b.masks):
            assert torch.equal(ma, mb)
        torch.testing.assert_close(b.theta0, a.theta0, rtol=1e-4, atol=1e-5)
    # both ranks finished with the writer's model
    r0, r1 = (torch.load(out.with_name(f"rank{k}.pt")) for k in (0, 1))
    for a, b in zip(r0["theta"], r1["theta"]):
        assert torch.equal(a, b)
    # only rank 0 wrote files: the model, its checkpoint, and the ranks' own .pt files here
    assert sorted(p.name for p in out.parent.iterdir()) == [
        "model.ckpt.safetensors", "model.safetensors", "rank0.pt", "rank1.pt"]


def test_two_process_encoding_matches_single_process(tmp_path, tiny_model_path, tiny_model):
    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(1)
    for i, (w, h) in enumerate([(40, 28), (16, 16), (33, 50), (20, 20), (9, 30)]):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(src / f"{i}.png")
    one = tmp_path / "one"
    inrcodec.encode_dataset(src, one, model=tiny_model, steps=3, batch_pixels=6 * 256, mode="weights", format_version=2)
    two = tmp_path / "two"
    _spawn(_encode_worker, str(src), str(two), str(tiny_model_path), 6 * 256, tmp_path=tmp_path)
    assert bulk.check_manifest(two) == []
    assert not list(two.glob("manifest.part-*"))
    m1 = json.loads((one / "manifest.json").read_text())
    m2 = json.loads((two / "manifest.json").read_text())
    assert m1["settings"] == m2["settings"]
    assert [e["file"] for e in m1["images"]] == [e["file"] for e in m2["images"]]
    for a, b in zip(m1["images"], m2["images"]):
        assert (two / b["file"]).read_bytes() == (one / a["file"]).read_bytes()
        assert (a["sha256"], a["psnr"]) == (b["sha256"], b["psnr"])
    reports = [json.loads((two / f".report{k}").read_text()) for k in (0, 1)]
    assert all(r["encoded"] == 5 for r in reports)  # run-wide counts on every rank
    # resuming under 2 processes skips everything
    _spawn(_encode_worker, str(src), str(two), str(tiny_model_path), 6 * 256, tmp_path=tmp_path)
    r = json.loads((two / ".report0").read_text())
    assert (r["encoded"], r["skipped"]) == (0, 5)


@pytest.mark.slow
def test_torchrun_launches_the_cli(tmp_path, tiny_model_path):
    """`torchrun --nproc_per_node 2 -m inrcodec.cli encode-dir` (the documented launch)."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        Image.fromarray(np.full((20, 24, 3), 40 * i, np.uint8)).save(src / f"{i}.png")
    env = dict(os.environ, PYTHONPATH=str(Path(inrcodec.__file__).parent.parent),
               OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", "-m", "inrcodec.cli", "encode-dir", str(src),
           str(tmp_path / "out"), "--mode", "weights", "--model", str(tiny_model_path), "--steps",
           "2", "--json",
           "--device", "cpu"]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    s = json.loads(p.stdout.strip().splitlines()[-1])
    assert s["encoded"] == 3
    assert bulk.check_manifest(tmp_path / "out") == []


@pytest.mark.slow
def test_torchrun_launches_meta_training(tmp_path):
    """`torchrun --nproc_per_node 2 -m inrcodec.cli train` on a small folder of images."""
    src = tmp_path / "photos"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(src / f"{i}.png")
    env = dict(os.environ, PYTHONPATH=str(Path(inrcodec.__file__).parent.parent),
               OMP_NUM_THREADS="1", INRCODEC_CACHE=str(tmp_path / "cache"))
    out = tmp_path / "m.safetensors"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", "-m", "inrcodec.cli", "train", str(src), str(out), "--mode", "weights", "--width",
           "8", "--depth",
           "2", "--tile", "8", "--pretrain-steps", "4", "--retrain-steps", "2", "--rounds", "1",
           "--n-train", "20", "--n-val", "2", "--device", "cpu", "-q"]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.count("2 levels") == 1  # rank 0 alone reports
    assert len(SharedModel.load(out).levels) == 2

"""How the networks run, as opposed to what they compute: the device, the compute path
(masked dense or compact, sparse.py), bfloat16 autocast and torch.compile for fitting.

All three are set for a block of code with `options(...)`, so the API's signatures stay
as they are:

    with inrcodec.accel.options(compute="compact", amp="bf16"):
        inrcodec.encode_file("photo.png", "photo.inr")

Defaults: compute "auto" (the faster path per level and device, sparse.plan_for), no
autocast, no compilation. bf16 and torch.compile are off by default because neither has
been shown to help: benchmarks/speed.py measures both (step time and decoded PSNR).
"""
from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass

import torch

from . import sparse

AMP_DTYPES = {"bf16": torch.bfloat16}


@dataclass(frozen=True)
class Options:
    amp: str | None = None
    compile: bool = False


_state = threading.local()


def current() -> Options:
    return getattr(_state, "options", Options())


@contextlib.contextmanager
def options(compute: str = "auto", amp: str | None = None, compile: bool = False):
    if amp is not None and amp not in AMP_DTYPES:
        raise ValueError(f"amp must be one of {sorted(AMP_DTYPES)} or None, got {amp!r}")
    old = current()
    _state.options = Options(amp=amp, compile=compile)
    try:
        with sparse.compute_path(compute):
            yield
    finally:
        _state.options = old


def autocast(device: torch.device):
    """The autocast context for a fitting pass on `device` (a no-op without amp)."""
    opt = current()
    if opt.amp is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=AMP_DTYPES[opt.amp])


_compiled: dict = {}


def loss_function(net, device: torch.device):
    """tile_losses for `net` on `device`, compiled with torch.compile when asked.

    The path (dense or compact) is fixed before compiling, so the compiled graph holds
    no Python-side choice; one compiled function is kept per (net, path, device).
    """
    from .inr import tile_losses
    if not current().compile:
        return lambda theta, coords, targets, weights: tile_losses(net, theta, coords,
                                                                   targets, weights)
    plan = sparse.plan_for(net, device)
    key = (id(net), plan is not None, str(device))
    if key not in _compiled:
        fwd = plan.forward if plan is not None else net.forward_dense

        def losses(theta, coords, targets, weights):
            return tile_losses(fwd, theta, coords, targets, weights)
        # Default dynamic-shape handling: a second batch size (a batch's last pass)
        # recompiles once with a dynamic batch dimension instead of once per size.
        _compiled[key] = (net, torch.compile(losses))
    return _compiled[key][1]


def resolve_device(device: str | torch.device | None) -> torch.device:
    """"auto" (or None): a GPU when there is one, else the CPU."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        from ..errors import InrcodecError
        raise InrcodecError("CUDA was requested but no CUDA device is available")
    return dev

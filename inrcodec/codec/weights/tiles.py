"""Images <-> T x T tiles, coordinate grids, and rendering at any resolution.

Tile (ty, tx) covers source pixels [ty*T, ty*T+T) x [tx*T, tx*T+T); its network sees pixel p
(0..T-1) of each axis at coordinate -1 + 2p/(T-1). Edge tiles that stick out of the image
are padded, and the padding carries zero weight in the loss.

Rendering at W' x H' samples output pixel j at source position u = j * W / W' (the same on
the other axis): the top-left corners stay aligned, so at an integer scale s every s-th
output pixel lands exactly on a source pixel. A position belongs to the tile whose pixel
centres are nearest (seams half-way between pixels) and is evaluated in that tile's frame,
slightly outside [-1, 1] when it lies beyond the tile's edge pixels.
"""
from __future__ import annotations

import math

import numpy as np
import torch


def grid_shape(height: int, width: int, tile: int) -> tuple[int, int]:
    """(tiles down, tiles across)."""
    return math.ceil(height / tile), math.ceil(width / tile)


def tile_coords(tile: int) -> torch.Tensor:
    """(T*T, 2) coordinates of one tile's pixels, row-major, as (x, y)."""
    ax = torch.linspace(-1.0, 1.0, tile)
    yy, xx = torch.meshgrid(ax, ax, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)


def image_to_tiles(img: np.ndarray, tile: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(H, W, C) float array -> tiles (n, T*T, C) and validity weights (n, T*T), row-major tiles."""
    h, w, c = img.shape
    ny, nx = grid_shape(h, w, tile)
    padded = np.zeros((ny * tile, nx * tile, c), dtype=np.float32)
    padded[:h, :w] = img
    valid = np.zeros((ny * tile, nx * tile), dtype=np.float32)
    valid[:h, :w] = 1.0
    t = padded.reshape(ny, tile, nx, tile, c).transpose(0, 2, 1, 3, 4).reshape(ny * nx, tile * tile, c)
    v = valid.reshape(ny, tile, nx, tile).transpose(0, 2, 1, 3).reshape(ny * nx, tile * tile)
    return torch.from_numpy(np.ascontiguousarray(t)), torch.from_numpy(np.ascontiguousarray(v))


def _axis_plan(src: int, out: int, tile: int, n_tiles: int):
    """Per output index along one axis: tile index and local coordinate."""
    u = np.arange(out, dtype=np.float64) * (src / out)
    t = np.clip(np.floor((u + 0.5) / tile).astype(np.int64), 0, n_tiles - 1)
    local = -1.0 + 2.0 * (u - t * tile) / (tile - 1)
    return t, local


def render(net, theta: torch.Tensor, height: int, width: int, tile: int,
           out_height: int | None = None, out_width: int | None = None,
           max_batch_pixels: int = 1 << 20) -> np.ndarray:
    """Evaluate every tile's network over the output grid -> (H', W', C) float32 array."""
    ny, nx = grid_shape(height, width, tile)
    if theta.shape[0] != ny * nx:
        raise ValueError(f"{theta.shape[0]} weight sets for a {ny}x{nx} tile grid")
    return render_groups([(net, theta, np.arange(ny * nx))], height, width, tile,
                         out_height, out_width, max_batch_pixels)


def render_groups(groups, height: int, width: int, tile: int,
                  out_height: int | None = None, out_width: int | None = None,
                  max_batch_pixels: int = 1 << 20) -> np.ndarray:
    """Like `render`, for tiles that use different networks: groups of (net, theta
    (n_k, P), the n_k raster indices of its tiles), every tile in exactly one group."""
    out_height = out_height or height
    out_width = out_width or width
    ny, nx = grid_shape(height, width, tile)
    ty, ly = _axis_plan(height, out_height, tile, ny)
    tx, lx = _axis_plan(width, out_width, tile, nx)
    rows = [np.nonzero(ty == i)[0] for i in range(ny)]
    cols = [np.nonzero(tx == j)[0] for j in range(nx)]
    my = max(len(r) for r in rows)
    mx = max(len(c) for c in cols)
    n_out = groups[0][0].arch.out_features
    out = np.zeros((out_height, out_width, n_out), dtype=np.float32)
    if my == 0 or mx == 0:
        return out
    # Local coordinates of every tile's output block, padded to (my, mx) by repeating the
    # last entry (tiles that receive no output pixel are skipped).
    def padded(idx, local, m):
        if len(idx) == 0:
            return np.zeros(m)
        v = local[idx]
        return np.concatenate([v, np.full(m - len(v), v[-1])])
    ycoord = np.stack([padded(r, ly, my) for r in rows])  # (ny, my)
    xcoord = np.stack([padded(c, lx, mx) for c in cols])  # (nx, mx)
    per_batch = max(1, max_batch_pixels // (my * mx))
    with torch.no_grad():
        for net, theta, ids in groups:
            device = theta.device
            # (row in theta, tile i, tile j) of this group's tiles that receive output
            tiles = [(k, int(t) // nx, int(t) % nx) for k, t in enumerate(ids)
                     if len(rows[int(t) // nx]) and len(cols[int(t) % nx])]
            for s in range(0, len(tiles), per_batch):
                chunk = tiles[s:s + per_batch]
                yy = torch.tensor(np.stack([ycoord[i] for _, i, _ in chunk]),
                                  dtype=torch.float32)
                xx = torch.tensor(np.stack([xcoord[j] for _, _, j in chunk]),
                                  dtype=torch.float32)
                coords = torch.stack([xx[:, None, :].expand(-1, my, -1),
                                      yy[:, :, None].expand(-1, -1, mx)],
                                     dim=-1).reshape(len(chunk), -1, 2)
                sel = torch.tensor([k for k, _, _ in chunk], device=device)
                pred = net(theta.index_select(0, sel), coords.to(device)).float().cpu().numpy()
                pred = pred.reshape(len(chunk), my, mx, n_out)
                for k, (_, i, j) in enumerate(chunk):
                    r, c = rows[i], cols[j]
                    out[r[0]:r[-1] + 1, c[0]:c[-1] + 1] = pred[k, :len(r), :len(c)]
    return out

"""Batch augmentation on the trial's device: random crops after zero padding, horizontal flips.

Data sets live whole on the device (see :mod:`nas_width.data.splits`), so augmentation is a
few tensor ops on a batch rather than per-image work in loader processes: one index gather
builds every sample's crop window (mirrored where flipped) in a single call.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["random_crop_flip"]


def random_crop_flip(
    x: torch.Tensor, *, pad: int, flip: bool, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Zero-pad by ``pad``, crop back to H x W at a random offset, maybe mirror; per sample.

    The inputs are already normalized, so zero padding is padding with the train mean. The
    offsets are drawn first (rows, then columns), then the flips, all from ``generator`` (on
    ``x``'s device) or the device's global generator, so a seeded generator repeats exactly.
    With ``pad=0`` and ``flip=False`` nothing is drawn and ``x`` itself is returned.

    Args:
        x: images (N, C, H, W), any dtype, on any device.
        pad: zero padding on each side (>= 0); offsets are uniform in 0..2*pad.
        flip: mirror each sample left-right with probability 1/2.
        generator: a ``torch.Generator`` on ``x.device``, or None.

    Returns:
        A new (N, C, H, W) tensor (or ``x`` when there is nothing to do).
    """
    if x.dim() != 4:
        raise ValueError(f"random_crop_flip needs images (N, C, H, W), got shape {tuple(x.shape)}")
    if isinstance(pad, bool) or not isinstance(pad, int) or pad < 0:
        raise ValueError(f"random_crop_flip: pad must be an integer >= 0, got {pad!r}")
    if pad == 0 and not flip:
        return x
    N, C, H, W = x.shape
    dev = x.device
    rows = torch.arange(H, device=dev).expand(N, H)  # (N, H): source row of each output row
    cols = torch.arange(W, device=dev).expand(N, W)  # (N, W): source column of each output column
    if pad > 0:
        x = F.pad(x, (pad, pad, pad, pad))  # (N, C, H + 2p, W + 2p)
        offsets = torch.randint(0, 2 * pad + 1, (2, N, 1), generator=generator, device=dev)
        rows, cols = rows + offsets[0], cols + offsets[1]
    if flip:
        mirrored = torch.rand(N, 1, generator=generator, device=dev) < 0.5  # (N, 1)
        cols = torch.where(mirrored, cols.flip(1), cols)
    n = torch.arange(N, device=dev).view(N, 1, 1, 1)
    c = torch.arange(C, device=dev).view(1, C, 1, 1)
    return x[n, c, rows.view(N, 1, H, 1), cols.view(N, 1, 1, W)]  # (N, C, H, W)

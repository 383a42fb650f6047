"""UNet for 1D and 2D fields, as PDEBench's baseline (Takamoto et al. 2022, after Ronneberger et al. 2015).

    x -> [pad to a multiple of 2^depth] -> encoder (depth x: block, max-pool /2) -> bottleneck
      -> decoder (depth x: transposed conv x2, concat skip, block) -> 1x1 conv -> [crop]

    block(c_in, c_out) = tanh(BN(conv3(tanh(BN(conv3(x))))))      (PDEBench: tanh, BatchNorm)

Widths double at every level: ``features``, 2 ``features``, ..., 2^depth ``features`` at
the bottleneck. PDEBench's UNet2d is ``UNet(2, features=32, depth=4)``; it needs grids
divisible by 16. This one pads the end of every axis (replicating the edge values)
up to a multiple of 2^depth and crops back, so it runs on any grid, odd node grids
(65, 33, 17, 9) included.

Unlike FNO, a UNet is not resolution-invariant: its kernels are three grid *points*
wide, whatever the spacing. A model trained at one resolution should be fine-tuned
at another (the quantization study does).

Shapes: (batch, in_channels, *grid) -> (batch, out_channels, *grid), 1 or 2 spatial axes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import check_grid_input
from .registry import register_model

_CONV = {1: nn.Conv1d, 2: nn.Conv2d}
_UP = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d}
_NORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d}
_POOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d}


class UNetBlock(nn.Sequential):
    """Two 3-point (3x3) convolutions, each followed by BatchNorm and tanh; (B, c_in, *g) -> (B, c_out, *g)."""

    def __init__(self, dim: int, in_channels: int, out_channels: int, norm: bool = True):
        layers: list[nn.Module] = []
        for c_in in (in_channels, out_channels):
            layers += [_CONV[dim](c_in, out_channels, kernel_size=3, padding=1, bias=not norm)]
            layers += [_NORM[dim](out_channels)] if norm else []
            layers += [nn.Tanh()]
        super().__init__(*layers)


class UNet(nn.Module):
    """PDEBench-style UNet on 1 or 2 spatial axes.

    Args:
        dim: number of spatial axes (1 or 2).
        in_channels, out_channels: channels of the input and output fields.
        features: width of the first level (PDEBench: 32); level k has features * 2^k.
        depth: number of down-sampling steps (PDEBench: 4).
        norm: BatchNorm after every convolution (PDEBench: yes).

    Shapes:
        (batch, in_channels, *grid) -> (batch, out_channels, *grid), any grid size.
    """

    def __init__(
        self,
        dim: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        features: int = 32,
        depth: int = 4,
        norm: bool = True,
    ):
        super().__init__()
        if dim not in _CONV:
            raise ValueError(f"UNet supports 1 or 2 spatial axes, got dim={dim}.")
        if depth < 1 or features < 1:
            raise ValueError(f"UNet needs depth >= 1 and features >= 1, got depth={depth}, features={features}.")
        self.dim, self.depth = dim, depth
        self.in_channels, self.out_channels = in_channels, out_channels
        widths = [features * 2**k for k in range(depth + 1)]
        self.encoders = nn.ModuleList(
            [UNetBlock(dim, c_in, c_out, norm) for c_in, c_out in zip([in_channels] + widths[:-2], widths[:-1])]
        )
        self.pool = _POOL[dim](kernel_size=2, stride=2)
        self.bottleneck = UNetBlock(dim, widths[-2], widths[-1], norm)
        self.upconvs = nn.ModuleList(
            [_UP[dim](widths[k + 1], widths[k], kernel_size=2, stride=2) for k in reversed(range(depth))]
        )
        self.decoders = nn.ModuleList([UNetBlock(dim, 2 * widths[k], widths[k], norm) for k in reversed(range(depth))])
        self.head = _CONV[dim](widths[0], out_channels, kernel_size=1)

    check_input = check_grid_input

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        grid = x.shape[2:]
        multiple = 2**self.depth
        pads = [(-n) % multiple for n in grid]
        if any(pads):
            spec = [v for p in reversed(pads) for v in (0, p)]  # F.pad lists the last axis first
            # replicate: a zero border would be a jump the convolutions learn to see
            x = F.pad(x, spec, mode="replicate")
        skips = []
        for encoder in self.encoders:
            x = encoder(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for up, decoder, skip in zip(self.upconvs, self.decoders, reversed(skips)):
            x = decoder(torch.cat([up(x), skip], dim=1))
        x = self.head(x)
        return x[(slice(None), slice(None)) + tuple(slice(0, n) for n in grid)]


@register_model("unet", "u-net")
def unet_from_settings(
    dim: int, in_channels: int, out_channels: int, hidden_channels: int = 32, n_layers: int = 4
) -> UNet:
    """A :class:`UNet` in the config's words: ``hidden_channels`` is its first width, ``n_layers`` its depth."""
    return UNet(dim, in_channels, out_channels, features=hidden_channels, depth=n_layers)

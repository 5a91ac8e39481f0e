"""The losses' precision under mixed precision (``tools/train.py --amp``).

Autocast runs the convolutions in float16 (CUDA) or bfloat16 (CPU), so the head's maps arrive
at the losses in that type. Elementwise ops such as ``sigmoid`` are not on autocast's float32
list and would run in the low type: MonoDLE's depth decoding ``1 / (sigmoid(x) + 1e-6) - 1``
in float16 is off by up to 0.16 m at 40-65 m. The head and the losses therefore cast their
inputs with :func:`loss_precision` first, and every loss (and the depth decoding inside it)
computes in float32.
"""
from __future__ import annotations

import torch
from torch import Tensor

#: floating types kept as they are: float32 (the cast is then a no-op, same tensor, so float32
#: runs stay bit-identical) and float64 (tests compare against float64 references)
_FULL_PRECISION = (torch.float32, torch.float64)


def loss_precision(tensor: Tensor) -> Tensor:
    """``tensor`` as float32 when it is a reduced-precision float (float16, bfloat16);
    float32 / float64 / integer / bool tensors are returned unchanged (the same object).

    Args:
        tensor: any tensor, e.g. a (B, C, h, w) head map or its (M, C) gathered values.

    Returns:
        The same shape and device; dtype float32 if it was float16 / bfloat16.
    """
    if tensor.is_floating_point() and tensor.dtype not in _FULL_PRECISION:
        return tensor.float()
    return tensor

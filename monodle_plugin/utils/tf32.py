"""TF32 off for the tools that compare numbers bit for bit.

On Ampere / Hopper GPUs torch runs float32 convolutions in TF32 by default
(``torch.backends.cudnn.allow_tf32 = True``; 10-bit mantissa products, about 1e-3 relative
differences in a deep network), and float32 matmuls too when
``torch.backends.cuda.matmul.allow_tf32`` is set. A tool whose figures are compared exactly
(``tools/analysis_tools/check_official_parity.py``) switches both off first and says so.
CPU kernels have no TF32; ``dp_ddp_equivalence.py --simulate`` computes in float64 on CPU
processes, where it never applies. docs/en/training_testing.md, "GPU vs CPU numbers",
says what to expect on GPUs.
"""
from __future__ import annotations

from typing import Optional

import torch


def switch_off_tf32() -> Optional[str]:
    """Set ``torch.backends.cuda.matmul.allow_tf32`` and ``torch.backends.cudnn.allow_tf32``
    to False (process-wide; harmless without CUDA).

    Returns:
        The line to log when CUDA is available (the flags then matter), else None.
    """
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    if not torch.cuda.is_available():
        return None
    return ('TF32 off (torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 '
            '= False): float32 matmuls and convolutions on CUDA compute in full float32')

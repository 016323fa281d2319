"""What a ``Device`` setting means: one answer for nmt-train, nmt-generate and nmt-analyze."""

from __future__ import annotations

import torch

from nmt_preln.config import Device
from nmt_preln.errors import UserError


def resolve_device(device: Device, *, option: str) -> torch.device:
    """The torch device of a setting: ``auto`` is CUDA when a GPU is visible, else the CPU.

    Args:
        device: the setting.
        option: the setting as the user spells a request for CUDA (``"--device cuda"``,
            ``"hardware.device=cuda"``), for the error message.

    Returns:
        ``torch.device("cuda")`` (no index: callers pick their local rank) or ``"cpu"``.

    Raises:
        UserError: CUDA was asked for and no CUDA device is visible.
    """
    if device == Device.cuda and not torch.cuda.is_available():
        raise UserError(f"{option}: no CUDA device is available")
    use_cuda = device == Device.cuda or (device == Device.auto and torch.cuda.is_available())
    return torch.device("cuda" if use_cuda else "cpu")

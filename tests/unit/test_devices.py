"""resolve_device: the one meaning of hardware.device / --device for every command."""

from __future__ import annotations

import pytest
import torch

from nmt_preln.config import Device
from nmt_preln.devices import resolve_device
from nmt_preln.errors import UserError


@pytest.mark.parametrize("gpu", [False, True])
def test_auto_follows_the_gpu_and_cpu_is_always_cpu(
    monkeypatch: pytest.MonkeyPatch, gpu: bool
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    assert resolve_device(Device.auto, option="x").type == ("cuda" if gpu else "cpu")
    assert resolve_device(Device.cpu, option="x") == torch.device("cpu")


def test_cuda_without_a_gpu_names_the_option(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UserError, match=r"^hardware.device=cuda: no CUDA device is available$"):
        resolve_device(Device.cuda, option="hardware.device=cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device(Device.cuda, option="--device cuda") == torch.device("cuda")

"""Where and how numbers are computed (``hardware.*`` of nmt-train; ``--device`` and
``--precision`` of nmt-generate)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from nmt_preln.config.fields import refuse_first


class Device(StrEnum):
    auto = "auto"  # cuda when available, else cpu
    cpu = "cpu"
    cuda = "cuda"


class Precision(StrEnum):
    fp32 = "fp32"
    bf16 = "bf16"  # autocast to bfloat16, fp32 master weights, no loss scaling
    fp16 = "fp16"  # autocast to float16 with dynamic loss scaling


@dataclass
class HardwareConfig:
    device: Device = Device.auto  # auto: cuda when available, else cpu
    precision: Precision = Precision.fp32  # fp32, bf16 autocast, or fp16 autocast with loss scaling
    compile: bool = False  # torch.compile the model
    num_threads: int = 0  # intra-op CPU threads; 0 keeps torch's default
    fp16_init_scale: float = 128.0  # initial fp16 loss scale
    fp16_scale_window: int = 2000  # updates without overflow before the loss scale doubles
    min_loss_scale: float = 1e-4  # stop with an error when the fp16 loss scale falls below this
    # How long a DDP collective waits for a rank that stopped answering (hung, SIGSTOPped,
    # lost node) before every rank fails with an error. The longest legitimate gap between
    # two collectives is rank 0 writing checkpoints or a first torch.compile (minutes at
    # most); torch's 30-minute default (NCCL: 10) wastes that long on a dead job. 10 minutes
    # covers a multi-GB save on a slow disk and still frees the GPUs for torchrun's restart.
    ddp_timeout_minutes: float = 10.0

    def validate(self) -> None:
        """Raise UserError naming the first ``hardware.*`` setting out of range."""
        refuse_first(self._rules())

    def _rules(self) -> Iterator[tuple[bool, str]]:
        yield (
            self.num_threads < 0,
            f"hardware.num_threads={self.num_threads} must be >= 0 (0: default)",
        )
        yield not self.fp16_init_scale > 0, "hardware.fp16_init_scale must be > 0"
        yield self.fp16_scale_window < 1, "hardware.fp16_scale_window must be >= 1"
        yield not self.min_loss_scale > 0, "hardware.min_loss_scale must be > 0"
        yield (
            not self.ddp_timeout_minutes > 0,
            f"hardware.ddp_timeout_minutes={self.ddp_timeout_minutes} must be > 0",
        )

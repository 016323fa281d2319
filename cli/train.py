"""``nmt-train``: compose the config from Hydra overrides, then train.

nmt-train +arch=preln data.path=data-bin/toy schedule=step_decay optim.lr=5e-4
nmt-train +arch=postln data.path=... --cfg job      # print the composed config and exit
torchrun --nproc-per-node 8 -m nmt_preln.cli.train +arch=preln_base hardware=gpu ...
"""

from __future__ import annotations

import sys

from omegaconf import OmegaConf

from nmt_preln.compose import compose_config, compose_train_config, group_options
from nmt_preln.errors import UserError

USAGE = """usage: nmt-train +arch=NAME data.path=DIR [KEY=VALUE ...] [--cfg job]

Hydra overrides: +arch=NAME (required), data=, optim=, schedule=, hardware=, +experiment=, and any
key of the composed config (e.g. optim.lr=1e-3 schedule.warmup_updates=0 checkpoint.save_dir=ckpt).
--cfg job prints the composed config and exits. Options of each group:
"""


def _usage() -> str:
    groups = ("arch", "data", "optim", "schedule", "hardware", "experiment")

    def shown(g: str) -> str:  # names starting with "_" are shared bases, not choices
        return ", ".join(o for o in group_options(g) if not o.rsplit("/", 1)[-1].startswith("_"))

    return USAGE + "".join(f"  {g}: {shown(g)}\n" for g in groups)


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if "-h" in args or "--help" in args:
        print(_usage(), end="")
        return
    show_cfg = args[-2:] == ["--cfg", "job"]
    overrides = args[:-2] if show_cfg else args
    try:
        if show_cfg:
            print(OmegaConf.to_yaml(compose_config("train", overrides)), end="")
            return
        cfg, _ = compose_train_config(overrides)
        from nmt_preln.train.trainer import train  # torch is imported only once the config is valid

        train(cfg)
    except UserError as err:
        print(f"nmt-train: error: {err}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:  # a second Ctrl-C (the first one saves and exits with 130)
        print(
            "nmt-train: error: interrupted; nothing saved since the last checkpoint",
            file=sys.stderr,
        )
        sys.exit(130)


if __name__ == "__main__":
    main()

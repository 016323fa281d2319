"""``nmt-train``: compose the config from Hydra overrides (or fairseq-train flags), then train.

nmt-train +arch=preln data.path=data-bin/toy schedule=step_decay optim.lr=5e-4
nmt-train data-bin/toy --arch transformer_iwslt_de_en --lr 5e-4 --max-update 100   # fairseq's
nmt-train +arch=postln data.path=... --cfg job      # print the composed config and exit
torchrun --nproc-per-node 8 -m nmt_preln.cli.train +arch=preln_base hardware=gpu ...

Exit status: 0 done, 2 usage error (the command line does not make a config), 1 any other
error, 130/143 interrupted (SIGINT/SIGTERM).
"""

from __future__ import annotations

import sys

from omegaconf import OmegaConf

from nmt_preln.compose import UsageError, check_data_path, compose_train, compose_train_config
from nmt_preln.errors import UserError
from nmt_preln.train_args import split_cfg_flag, to_overrides


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if "-h" in args or "--help" in args:
        from nmt_preln.flag_docs import train_usage

        print(train_usage(), end="")
        return
    try:
        args, show_cfg = split_cfg_flag(args)
        overrides = to_overrides(args)
        if show_cfg:
            print(OmegaConf.to_yaml(compose_train(overrides)), end="")
            return
        cfg, _ = compose_train_config(overrides)
        # torch is imported only once the config composes
        from nmt_preln.devices import resolve_device
        from nmt_preln.train.restore import check_restore_files
        from nmt_preln.train.trainer import train

        cfg.validate()  # the settings first, so a bad one is never hidden by the data
        check_restore_files(cfg.checkpoint)  # then the files they name
        resolve_device(cfg.hardware.device, option="hardware.device=cuda")
        check_data_path(cfg, overrides)
        train(cfg)
    except UsageError as err:
        print(f"nmt-train: error: {err}", file=sys.stderr)
        sys.exit(2)
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

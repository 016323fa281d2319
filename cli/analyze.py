"""``nmt-analyze``: the paper's experiments (docs/REPRODUCTION.md).

nmt-analyze grad-norm DATA --arch preln --out figures/          # Figure 3, at initialization
nmt-analyze sweep --experiments 'cpu/postln_adam_*' --out runs/ --name fig2_adam [OVERRIDES]
"""

from __future__ import annotations

import logging
import sys

from nmt_preln.errors import UserError
from nmt_preln.flags import build_parser, parse_config, to_config
from nmt_preln.tools_config import GradNormConfig, SweepConfig

USAGE = """usage: nmt-analyze {grad-norm,sweep} ... (-h after a command for its flags)

  grad-norm  per-layer gradient norms of Post-LN and Pre-LN models at initialization
  sweep      train +experiment runs, decode them, plot validation loss and BLEU
"""
GRAD_NORM = "Gradient norms at initialization on real batches of DATA (the paper's Figure 3)."
SWEEP = (
    "Train each experiment (nmt-train +experiment=NAME checkpoint.save_dir=OUT/NAME OVERRIDES), "
    "decode it, and draw validation loss and BLEU curves; finished runs are skipped."
)


def _run(command: str, args: list[str]) -> None:
    if command == "grad-norm":
        cfg = parse_config(
            GradNormConfig,
            args,
            prog="nmt-analyze grad-norm",
            description=GRAD_NORM,
            positional=("data",),
        )
        cfg.validate()
        from nmt_preln.analysis.grad_norm import run_grad_norm
        from nmt_preln.compose import compose_train_config

        model_cfg = compose_train_config([f"+arch={cfg.arch}", f"data.path={cfg.data}"])[0].arch
        print("\n".join(run_grad_norm(cfg, model_cfg)))
        return
    parser = build_parser(SweepConfig, prog="nmt-analyze sweep", description=SWEEP)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every run")
    namespace = parser.parse_args(args)
    sweep = to_config(SweepConfig, namespace)
    sweep.validate()
    from nmt_preln.analysis.sweep import run_sweep

    print("\n".join(run_sweep(sweep, overrides=namespace.overrides)))


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in ("grad-norm", "sweep"):
        help_asked = bool(args) and args[0] in ("-h", "--help")
        print(USAGE, end="", file=sys.stdout if help_asked else sys.stderr)
        return 0 if help_asked else 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s | %(message)s", stream=sys.stderr)
    try:
        _run(args[0], args[1:])
    except UserError as err:
        print(f"nmt-analyze: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``nmt-analyze sweep``: train a list of ``+experiment`` runs, decode them, draw their curves.

Each experiment ``E`` trains in its own directory ``OUT/E`` (``checkpoint.save_dir``) through
the real ``nmt-train`` in a child process, so that a run that diverges (the trainer stops with
an error) is recorded as a result instead of ending the sweep, and memory is returned between
runs. The finished run's ``checkpoint_best.pt`` (or ``_last``) is then decoded with the
generator (beam search, sacreBLEU) and ``OUT/E/result.json`` is written, last: it marks the run
as done, so running the same command again skips it. An interrupted run (Ctrl-C, SIGTERM, a
killed machine) has no result yet; the next invocation resumes it from its
``checkpoint_last.pt`` (``checkpoint.resume`` is on by default).

Layout::

    OUT/E/train.log           nmt-train's output        OUT/E/train_log.jsonl   the curves
    OUT/E/result.json         status, BLEU, times       OUT/E/checkpoint_*.pt
    OUT/NAME.png / NAME.csv   validation loss and BLEU of every run, per epoch and per update
    OUT/NAME_results.csv      one line per run: status, epochs, updates, best loss, BLEU
"""

from __future__ import annotations

import contextlib
import csv
import fnmatch
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

from nmt_preln.analysis.curves import LOG_NAME, read_validation_curve, write_curves_csv
from nmt_preln.atomic_file import atomic_write
from nmt_preln.compose import compose_train_config, group_options
from nmt_preln.config import GenerateConfig, SearchConfig, TrainConfig
from nmt_preln.errors import UserError
from nmt_preln.tools_config import SweepConfig

logger = logging.getLogger(__name__)

RESULT = "result.json"
TRAIN_OUTPUT = "train.log"
LOCK = ".sweep.lock"  # holds the pid of the sweep training the run (same machine)
# Exit codes of nmt-train when a signal stopped it after saving (resumable, not a result).
INTERRUPTED = (130, 143)


@dataclass
class RunResult:
    """What ``result.json`` holds for one experiment."""

    experiment: str
    status: str  # "finished", or "failed" when nmt-train stopped with an error (e.g. diverged)
    message: str = ""  # nmt-train's error line when failed
    epochs: int = 0
    updates: int = 0
    best_valid_loss: float | None = None
    last_valid_bleu: float | None = None  # greedy, from the trainer's last validation
    bleu: dict[str, float] = field(default_factory=dict)  # subset -> sacreBLEU (beam search)
    checkpoint: str = ""  # the file decoded, relative to the run directory
    train_seconds: float = 0.0
    decode_seconds: float = 0.0


def expand_experiments(spec: str) -> list[str]:
    """``"cpu/postln_adam_*,cpu/preln_adam_5e-4_stepdecay"`` -> option names, in order.

    Glob patterns (``*?[``) match the shipped ``conf/experiment`` options except those whose
    file name starts with ``_`` (shared bases); a plain name must exist.

    Raises:
        UserError: a name or pattern matches nothing.
    """
    options = group_options("experiment")
    visible = [o for o in options if not o.rsplit("/", 1)[-1].startswith("_")]
    chosen: list[str] = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        matches = fnmatch.filter(visible, item) if any(c in item for c in "*?[") else [item]
        if not matches or (matches == [item] and item not in options):
            raise UserError(
                f"--experiments: {item!r} matches no conf/experiment option (have: "
                f"{', '.join(visible)})"
            )
        chosen += [m for m in matches if m not in chosen]
    if not chosen:
        raise UserError("--experiments: no experiment given")
    return chosen


def run_dir(out: str, experiment: str) -> str:
    """``OUT/cpu/postln_adam_5e-4_warmup500`` for the experiment ``cpu/postln_adam_...``."""
    return os.path.join(out, *experiment.split("/"))


def _train_overrides(experiment: str, out: str, overrides: list[str]) -> list[str]:
    # The user's overrides win over the experiment; the run directory is the sweep's.
    save_dir = run_dir(out, experiment)
    return [f"+experiment={experiment}", "progress_bar=false", *overrides,
            f"checkpoint.save_dir={save_dir}"]  # fmt: skip


def compose_runs(
    experiments: list[str], *, out: str, overrides: list[str]
) -> dict[str, TrainConfig]:
    """Compose every run's config before anything trains, so a typo fails at once."""
    return {e: compose_train_config(_train_overrides(e, out, overrides))[0] for e in experiments}


def _train(experiment: str, cfg: TrainConfig, *, out: str, overrides: list[str]) -> RunResult:
    """Run ``nmt-train`` in a child process; output appended to ``OUT/E/train.log``."""
    directory = cfg.checkpoint.save_dir
    os.makedirs(directory, exist_ok=True)
    command = [sys.executable, "-m", "nmt_preln.cli.train",
               *_train_overrides(experiment, out, overrides)]  # fmt: skip
    start = time.perf_counter()
    log_path = os.path.join(directory, TRAIN_OUTPUT)
    with open(log_path, "a", encoding="utf-8") as log:
        log.write("$ " + " ".join(command) + "\n")
        log.flush()
        code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False).returncode
    seconds = time.perf_counter() - start
    if code in INTERRUPTED or code < 0:
        raise UserError(
            f"{experiment}: nmt-train was interrupted (exit {code}); run the same command "
            "again to resume it"
        )
    result = RunResult(experiment=experiment, status="finished", train_seconds=seconds)
    if code != 0:
        with open(log_path, encoding="utf-8", errors="replace") as log:
            errors = [ln.strip() for ln in log if ln.startswith("nmt-train: error:")]
        result.status = "failed"
        result.message = errors[-1] if errors else f"nmt-train exited with status {code}"
        logger.warning("%s: %s", experiment, result.message)
    return result


def _decode(result: RunResult, cfg: TrainConfig, sweep: SweepConfig) -> None:
    """Beam-search the chosen checkpoint on ``sweep.gen_subsets``; fills ``result.bleu``."""
    from nmt_preln.data.dataset import load_manifest
    from nmt_preln.generate.run import generate  # torch and the generator only when decoding

    name = f"checkpoint_{sweep.checkpoint}.pt"
    path = os.path.join(cfg.checkpoint.save_dir, name)
    if not os.path.exists(path):
        logger.warning("%s: no %s to decode", result.experiment, name)
        return
    result.checkpoint = name
    if cfg.hardware.num_threads > 0:  # decode with the run's thread budget (shared CPUs)
        import torch

        torch.set_num_threads(cfg.hardware.num_threads)
    # Pre-segmented data (fairseq's IWSLT14 BPE) is scored without its "@@ " joiners, as the
    # trainer's validation BLEU does; SentencePiece output is always decoded.
    presegmented = load_manifest(cfg.data.path)["segmentation"] == "none"
    start = time.perf_counter()
    for subset in (s.strip() for s in sweep.gen_subsets.split(",") if s.strip()):
        gen = GenerateConfig(
            data=cfg.data.path, path=path, gen_subset=subset,
            search=SearchConfig(beam=sweep.beam, lenpen=sweep.lenpen), quiet=True,
            results_path=cfg.checkpoint.save_dir,
            device=cfg.hardware.device, remove_bpe="@@ " if presegmented else None,
        )  # fmt: skip
        with open(os.path.join(cfg.checkpoint.save_dir, f"generate-{subset}.log"), "w") as err:
            scores = generate(gen, stderr=err)
        if scores is not None:
            result.bleu[subset] = round(scores.bleu, 2)
    result.decode_seconds = time.perf_counter() - start


def _summarize_curve(result: RunResult, save_dir: str) -> None:
    points = read_validation_curve(save_dir)
    if points:
        result.epochs, result.updates = points[-1].epoch, points[-1].update
        finite = [p.loss for p in points if p.loss == p.loss and p.loss != float("inf")]
        result.best_valid_loss = round(min(finite), 4) if finite else None
        bleu = points[-1].bleu
        result.last_valid_bleu = None if bleu is None else round(bleu, 2)


def _write_result(result: RunResult, save_dir: str) -> None:
    with atomic_write(os.path.join(save_dir, RESULT)) as f:
        json.dump(asdict(result), f, indent=1)


def read_result(save_dir: str) -> RunResult | None:
    """The run's ``result.json``, or None when the run has not finished."""
    path = os.path.join(save_dir, RESULT)
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return RunResult(**json.load(f))
    except (OSError, json.JSONDecodeError, TypeError) as e:
        raise UserError(f"{path}: unreadable run result ({e}); delete it to redo the run") from None


def _clear(save_dir: str) -> None:
    """Delete a previous run before ``--rerun`` (only directories that look like runs)."""
    markers = (RESULT, LOG_NAME, TRAIN_OUTPUT)
    if not any(os.path.exists(os.path.join(save_dir, m)) for m in markers):
        return
    for name in os.listdir(save_dir):  # everything but our own lock
        if name != LOCK:
            path = os.path.join(save_dir, name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            else:
                os.remove(path)


def _alive(pid_file: str) -> bool:
    try:
        with open(pid_file, encoding="utf-8") as f:
            os.kill(int(f.read().strip() or "0"), 0)
    except (OSError, ValueError):  # no such process, unreadable or empty file
        return False
    return True


@contextlib.contextmanager
def _run_lock(save_dir: str) -> Iterator[bool]:
    """Own ``OUT/E/.sweep.lock`` while training (yields True), so that two sweeps sharing runs
    never train the same one at once; yields False while another live sweep owns it."""
    os.makedirs(save_dir, exist_ok=True)
    path = os.path.join(save_dir, LOCK)
    if os.path.exists(path) and not _alive(path):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)  # left by a sweep that was killed
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        yield False
        return
    with os.fdopen(fd, "w") as f:
        f.write(str(os.getpid()))
    try:
        yield True
    finally:
        os.remove(path)


def execute(
    experiment: str, cfg: TrainConfig, sweep: SweepConfig, *, overrides: list[str]
) -> RunResult | None:
    """Train (or resume) and decode one run unless it has finished.

    Returns:
        Its result, or None while another sweep is training it.
    """
    save_dir = cfg.checkpoint.save_dir
    done = None if sweep.rerun else read_result(save_dir)
    if done is not None:
        logger.info("%s: finished earlier (%s), skipped", experiment, done.status)
        return done
    with _run_lock(save_dir) as mine:
        if not mine:
            logger.warning("%s: another sweep is training it now; skipped", experiment)
            return None
        if sweep.rerun:
            _clear(save_dir)
            os.makedirs(save_dir, exist_ok=True)
        elif (done := read_result(save_dir)) is not None:  # finished while we waited for the lock
            return done
        logger.info("%s: training in %s", experiment, save_dir)
        result = _train(experiment, cfg, out=sweep.out, overrides=overrides)
        _summarize_curve(result, save_dir)
        _decode(result, cfg, sweep)
        _write_result(result, save_dir)
    logger.info(
        "%s: %s, BLEU %s, %.0f s + %.0f s decoding",
        experiment,
        result.status,
        result.bleu,
        result.train_seconds,
        result.decode_seconds,
    )
    return result


def write_results_csv(results: list[RunResult], path: str) -> None:
    """One row per run (BLEU columns per decoded subset)."""
    subsets = sorted({s for r in results for s in r.bleu})
    columns = ["experiment", "status", "epochs", "updates", "best_valid_loss",
               "last_valid_bleu", *[f"bleu_{s}" for s in subsets], "train_seconds",
               "decode_seconds", "message"]  # fmt: skip
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for r in results:
            row = asdict(r)
            if r.last_valid_bleu is not None:
                row["last_valid_bleu"] = round(r.last_valid_bleu, 2)
            row.update({f"bleu_{s}": r.bleu.get(s, "") for s in subsets})
            row["train_seconds"], row["decode_seconds"] = (
                round(r.train_seconds),
                round(r.decode_seconds),
            )
            writer.writerow(["" if row.get(c) is None else row.get(c, "") for c in columns])


def _label(experiment: str, experiments: list[str]) -> str:
    """Drop the folder all runs share (``cpu/``) from the legend."""
    folders = {e.rsplit("/", 1)[0] for e in experiments if "/" in e}
    if len(folders) == 1 and all("/" in e for e in experiments):
        return experiment.split("/", 1)[1] if experiment.count("/") == 1 else experiment
    return experiment


def run_sweep(cfg: SweepConfig, *, overrides: list[str]) -> list[str]:
    """``nmt-analyze sweep``: run what is missing, then write the figure and CSVs.

    Args:
        cfg: the experiments, output directory, decoding and rerun settings.
        overrides: Hydra overrides applied to every run (e.g. ``data.path=...``).

    Returns:
        The paths of the figure, the curves CSV and the results CSV.

    Raises:
        UserError: an unknown experiment, a config that does not compose, an interrupted run.
    """
    experiments = expand_experiments(cfg.experiments)
    configs = compose_runs(experiments, out=cfg.out, overrides=overrides)
    results = []
    for experiment in experiments:
        if cfg.plot_only:
            found = read_result(configs[experiment].checkpoint.save_dir)
            results += [found] if found is not None else []
        elif result := execute(experiment, configs[experiment], cfg, overrides=overrides):
            results.append(result)
    from nmt_preln.analysis.plots import plot_curves  # matplotlib only for drawing

    curves = {
        _label(e, experiments): read_validation_curve(configs[e].checkpoint.save_dir)
        for e in experiments
    }
    figure = os.path.join(cfg.out, f"{cfg.name}.png")
    os.makedirs(cfg.out, exist_ok=True)
    plot_curves(curves, figure, title=f"{cfg.name}: validation loss and BLEU of {len(curves)} runs")
    write_curves_csv(curves, os.path.join(cfg.out, f"{cfg.name}.csv"))
    write_results_csv(results, os.path.join(cfg.out, f"{cfg.name}_results.csv"))
    return [figure, os.path.join(cfg.out, f"{cfg.name}.csv"),
            os.path.join(cfg.out, f"{cfg.name}_results.csv")]  # fmt: skip

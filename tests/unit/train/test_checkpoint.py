"""Atomic writes, safe loading, RNG round trips, retention and rebuilding the model."""

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from nmt_preln.checkpoint import store as ckpt
from nmt_preln.checkpoint.store import (
    FORMAT_VERSION,
    CheckpointError,
    capture_rng_state,
    checkpoint_names,
    config_to_plain,
    copy_checkpoint,
    load_checkpoint,
    model_config_from_plain,
    prune_checkpoints,
    restore_rng_state,
    save_checkpoint,
)
from nmt_preln.config import (
    Activation,
    CheckpointConfig,
    HardwareConfig,
    ModelConfig,
    NormPosition,
    OptimConfig,
    Optimizer,
    ScheduleConfig,
    ScheduleName,
    TrainConfig,
)
from nmt_preln.errors import UserError
from nmt_preln.train.optim import DynamicLossScaler, build_optimizer
from nmt_preln.train.schedule import LRScheduler

SYMBOLS = ["<s>", "<pad>", "</s>", "<unk>"] + [f"w{i}" for i in range(20)]
ARCH = ModelConfig(encoder_layers=1, decoder_layers=1, d_model=16, ffn_dim=32, num_heads=2)


def _state(value: float = 1.0) -> dict[str, Any]:
    """A complete checkpoint of a tiny model (what nmt-train writes); ``value`` tells it apart."""
    from nmt_preln.data.dictionary import Dictionary
    from nmt_preln.models.transformer import build_model

    torch.manual_seed(0)
    d = Dictionary.from_symbols(SYMBOLS)
    model = build_model(ARCH, d, d)
    optimizer = build_optimizer(model.parameters(), OptimConfig(), device="cpu")
    model(torch.tensor([[5, 6, 2]]), torch.tensor([[2, 7]])).sum().backward()
    optimizer.step()
    return {
        "format_version": FORMAT_VERSION,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": {"decay_start_update": None},
        "scaler": {},
        "rng": capture_rng_state(),
        "iterator": {"epoch": 2, "batch_index": 5},
        "num_updates": 7,
        "best_metric": value,
        "bad_validations": 0,
        "config": config_to_plain(TrainConfig(arch=ARCH)),
        "src_dict": list(SYMBOLS),
        "tgt_dict": list(SYMBOLS),
        "spm_models": {},
        "source_lang": "de",
        "target_lang": "en",
    }


def test_round_trip_with_trainer_states(tmp_path: Path) -> None:
    from nmt_preln.data.dictionary import Dictionary
    from nmt_preln.models.transformer import build_model

    scheduler = LRScheduler(ScheduleConfig(), peak_lr=1e-3, max_update=0)
    scaler = DynamicLossScaler.from_config(HardwareConfig())
    path = tmp_path / "sub" / "checkpoint_last.pt"
    extra = {"scheduler": scheduler.state_dict(), "scaler": scaler.state_dict()}
    save_checkpoint(path, {**_state(3.0), **extra})
    state = load_checkpoint(path)
    d = Dictionary.from_symbols(SYMBOLS)
    model = build_model(ARCH, d, d)
    build_optimizer(model.parameters(), OptimConfig(), device="cpu").load_state_dict(
        state["optimizer"]
    )
    model.load_state_dict(state["model"])
    assert state["config"]["arch"]["norm_position"] == "pre" and state["best_metric"] == 3.0
    assert state["iterator"]["batch_index"] == 5 and state["scaler"]["loss_scale"] == 128.0
    assert os.listdir(path.parent) == ["checkpoint_last.pt"]


@pytest.mark.parametrize(
    ("target", "error"),
    [
        ("torch.save", OSError(28, "No space left on device")),
        ("torch.save", RuntimeError("PytorchStreamWriter failed writing file data/0")),
        ("os.replace", OSError(28, "No space left on device")),
    ],
)
def test_failed_write_keeps_the_old_file_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str, error: Exception
) -> None:
    path = tmp_path / "checkpoint_last.pt"
    save_checkpoint(path, _state(1.0))

    def fail(*args: Any, **kwargs: Any) -> None:
        if len(args) > 1 and hasattr(args[1], "write"):
            args[1].write(b"half a checkpoint")  # torch.save(state, f) dies mid-write
        raise error

    monkeypatch.setattr(target, fail)
    with pytest.raises(CheckpointError, match=r"checkpoint_last.pt") as info:
        save_checkpoint(path, _state(2.0))
    monkeypatch.undo()
    assert isinstance(info.value, UserError) and "\n" not in str(info.value)
    assert os.listdir(tmp_path) == ["checkpoint_last.pt"]
    assert load_checkpoint(path)["best_metric"] == 1.0


def test_unwritable_directory_is_a_user_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("x")
    with pytest.raises(CheckpointError, match="not_a_dir"):
        save_checkpoint(blocker / "checkpoint_last.pt", _state())


def test_non_plain_values_are_refused_before_writing(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"\['arr'\].*ndarray"):
        save_checkpoint(tmp_path / "c.pt", {**_state(), "arr": np.zeros(2)})
    with pytest.raises(TypeError, match="ScheduleName"):
        save_checkpoint(tmp_path / "c.pt", {**_state(), "name": ScheduleName.cosine})
    assert not (tmp_path / "c.pt").exists()


class _Exploit:
    """Unpickling this object calls os.mkdir(marker): code execution from a data file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (str(self.marker),))


def test_malicious_pickle_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"format_version": FORMAT_VERSION, "model": _Exploit(marker)}, path)
    with pytest.raises(CheckpointError, match="refusing to load"):
        load_checkpoint(path)
    assert not marker.exists()
    # The file really is an exploit: an unsafe load runs it.
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_broken_files_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    path = tmp_path / "c.pt"
    save_checkpoint(path, _state())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"c.pt"):
        load_checkpoint(path)
    path.write_text("hello, not a checkpoint\n")
    with pytest.raises(CheckpointError, match=r"c.pt"):
        load_checkpoint(path)
    torch.save({"model": {}}, path)
    with pytest.raises(CheckpointError, match="no format_version"):
        load_checkpoint(path)
    torch.save({**_state(), "format_version": FORMAT_VERSION + 1}, path)
    with pytest.raises(CheckpointError, match="format_version"):
        load_checkpoint(path)


def _draws() -> tuple[float, list[float], list[float]]:
    return random.random(), np.random.rand(3).tolist(), torch.rand(3).tolist()


def test_rng_round_trip_through_a_checkpoint(tmp_path: Path) -> None:
    random.gauss(0, 1)  # leaves a cached gaussian in python's state
    state = capture_rng_state()
    first = _draws()
    save_checkpoint(tmp_path / "c.pt", {**_state(), "rng": state})
    _draws()  # move every generator on
    restore_rng_state(load_checkpoint(tmp_path / "c.pt")["rng"])
    assert _draws() == first


def test_copy_checkpoint(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "checkpoint_last.pt", _state(4.0))
    copy_checkpoint(tmp_path / "checkpoint_last.pt", tmp_path / "checkpoint_best.pt")
    assert load_checkpoint(tmp_path / "checkpoint_best.pt")["best_metric"] == 4.0
    with pytest.raises(CheckpointError, match=r"nope.pt"):
        copy_checkpoint(tmp_path / "nope.pt", tmp_path / "x.pt")


def test_checkpoint_names_follow_fairseq() -> None:
    cfg = CheckpointConfig(save_interval=2, save_interval_updates=100)
    end = checkpoint_names(cfg, epoch=4, num_updates=1000, end_of_epoch=True, is_best=True)
    assert end == ["checkpoint4.pt", "checkpoint_best.pt", "checkpoint_last.pt"]
    assert checkpoint_names(cfg, epoch=3, num_updates=950, end_of_epoch=True, is_best=False) == [
        "checkpoint_last.pt"
    ]
    mid = checkpoint_names(cfg, epoch=3, num_updates=1200, end_of_epoch=False, is_best=False)
    assert mid == ["checkpoint_3_1200.pt", "checkpoint_last.pt"]


def test_prune_keeps_the_newest(tmp_path: Path) -> None:
    names = [f"checkpoint{e}.pt" for e in (1, 2, 3, 10)]
    names += [f"checkpoint_1_{u}.pt" for u in (50, 100, 150)] + ["checkpoint_last.pt"]
    names += ["checkpoint_best.pt"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    keep_all = CheckpointConfig(save_dir=str(tmp_path))
    assert prune_checkpoints(keep_all) == []
    cfg = CheckpointConfig(save_dir=str(tmp_path), keep_last_epochs=2, keep_interval_updates=1)
    removed = prune_checkpoints(cfg)
    assert sorted(p.name for p in removed) == [
        "checkpoint1.pt",
        "checkpoint2.pt",
        "checkpoint_1_100.pt",
        "checkpoint_1_50.pt",
    ]
    assert sorted(os.listdir(tmp_path)) == [
        "checkpoint10.pt",
        "checkpoint3.pt",
        "checkpoint_1_150.pt",
        "checkpoint_best.pt",
        "checkpoint_last.pt",
    ]


def test_model_config_round_trips_through_plain_types() -> None:
    arch = ModelConfig(norm_position=NormPosition.post, activation=Activation.gelu, d_model=32)
    plain = config_to_plain(TrainConfig(arch=arch))
    assert plain["arch"]["norm_position"] == "post" and plain["schedule"]["name"] == "inverse_sqrt"
    assert model_config_from_plain(plain["arch"], source="x.pt") == arch
    with pytest.raises(CheckpointError, match=r"arch.bogus"):
        model_config_from_plain({"bogus": 1}, source="x.pt")
    with pytest.raises(CheckpointError, match=r"arch.norm_position"):
        model_config_from_plain({"norm_position": "middle"}, source="x.pt")


def test_load_model_from_checkpoint_gives_identical_logits(tmp_path: Path) -> None:
    transformer = pytest.importorskip("nmt_preln.models.transformer")
    dictionary = pytest.importorskip("nmt_preln.data.dictionary")
    torch.manual_seed(0)
    symbols = ["<s>", "<pad>", "</s>", "<unk>"] + [f"w{i}" for i in range(20)]
    d = dictionary.Dictionary.from_symbols(symbols)
    arch = ModelConfig(
        encoder_layers=1,
        decoder_layers=1,
        d_model=16,
        ffn_dim=32,
        num_heads=2,
        norm_position=NormPosition.post,
    )
    model = transformer.build_model(arch, d, d).eval()
    state = {
        **{k: v for k, v in _state().items() if k != "optimizer"},  # a post-LN model's
        "model": model.state_dict(),
        "config": config_to_plain(TrainConfig(arch=arch)),
        "src_dict": symbols,
        "tgt_dict": symbols,
    }
    save_checkpoint(tmp_path / "c.pt", state)
    loaded, loaded_state = ckpt.load_model_from_checkpoint(tmp_path / "c.pt", device="cpu")
    assert not loaded.training and loaded_state["num_updates"] == 7
    src = torch.tensor([[5, 6, 7, 2]])
    prev = torch.tensor([[2, 8, 9]])
    with torch.no_grad():
        assert torch.equal(loaded(src, prev), model(src, prev))
    broken = {**state, "model": {k: v for k, v in state["model"].items() if "encoder" not in k}}
    save_checkpoint(tmp_path / "broken.pt", broken)
    with pytest.raises(CheckpointError, match=r"does not fit config\.arch"):
        ckpt.load_model_from_checkpoint(tmp_path / "broken.pt", device="cpu")


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_checkpoints_respect_the_umask(tmp_path: Path, umask: int) -> None:
    previous = os.umask(umask)
    try:
        save_checkpoint(tmp_path / "checkpoint_last.pt", _state())
        copy_checkpoint(tmp_path / "checkpoint_last.pt", tmp_path / "checkpoint_best.pt")
    finally:
        os.umask(previous)
    for name in ("checkpoint_last.pt", "checkpoint_best.pt"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask, name


def _nested_set(state: dict[str, Any], field: str, value: Any) -> None:
    """Set (or delete) ``state[a][b]...`` for ``field`` "a.b..." (weight names keep dots)."""
    parts = field.split(".", 1) if field.startswith("model.") else field.split(".")
    node: Any = state
    keys = [int(k) if k.isdigit() else k for k in parts]
    for key in keys[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value


_DELETE = object()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("config.arch.d_model", "16", "field 'config.arch.d_model' is a str, expected int"),
        ("config.arch.dropout", float("nan"), "config.arch.dropout"),
        ("config.arch.share_all_embeddings", 1, "expected bool"),
        ("config.arch.num_heads", 3, "config.arch.num_heads=3 does not divide"),
        ("config.arch.decoder_layers", 10**9, "config.arch.decoder_layers"),
        ("config.arch.max_positions", 1 << 40, "config.arch.max_positions"),
        ("config.arch", None, "field 'config.arch' is None, expected a dict"),
        ("config.optim.lr", "fast", "field 'config.optim.lr' is a str, expected a number"),
        ("src_dict", 7, "field 'src_dict' is an int, expected a list"),
        ("tgt_dict.5", 5, "field 'tgt_dict.5' is 5"),
        ("tgt_dict.0", "<pad>", "field 'tgt_dict' is not a dictionary"),
        ("spm_models", ["x"], "field 'spm_models' is a list, expected a dict"),
        ("spm_models", {"de": "spm"}, "field 'spm_models.de' is a str"),
        ("spm_models", {"de": b"junk"}, "is not a valid SentencePiece model"),
        ("source_lang", "x/../../../../tmp/x", "field 'source_lang' is 'x/../"),
        ("target_lang", "de", "the same as source_lang"),
        ("model.encoder.final_norm.weight", torch.full((16,), float("nan")), "NaN"),
        ("model.encoder.final_norm.weight", torch.ones(17), "does not fit config.arch"),
        ("model.encoder.final_norm.weight", torch.ones(16, dtype=torch.int64), "int64"),
        ("model", _DELETE, "field 'model' is missing"),
        ("optimizer.param_groups.0.lr", "x", "field 'optimizer.param_groups.0.lr' is a str"),
        ("optimizer.param_groups.0.betas", [0.9], "has 1 items, expected 2"),
        ("optimizer.state.0.exp_avg", torch.zeros(3), "has shape (3,), expected"),
        ("optimizer.state.0.exp_avg_sq", None, "expected a number"),
        ("optimizer.param_groups.0.params", [0, 0], "each once"),
        ("rng.torch", torch.zeros(3, dtype=torch.uint8), "field 'rng.torch' has 3 bytes"),
        ("rng.python.1", [1, 2], "field 'rng.python.1' has 2 items"),
        ("rng.numpy.1", torch.zeros(624), "expected int64 (624,)"),
        ("iterator.epoch", 0, "field 'iterator.epoch' is 0, expected >= 1"),
        ("iterator.batch_index", -1, "field 'iterator.batch_index' is -1"),
        ("iterator", _DELETE, "field 'iterator' is missing"),
        ("num_updates", 2.5, "field 'num_updates' is a float, expected int"),
        ("num_updates", True, "field 'num_updates' is a bool, expected int"),
        ("best_metric", float("inf"), "field 'best_metric' is inf"),
        ("scheduler.decay_start_update", "3", "field 'scheduler.decay_start_update' is a str"),
        ("scaler", {"loss_scale": 0.0, "clean_updates": 1}, "scaler.loss_scale"),
    ],
)
def test_every_field_is_validated_with_one_line(
    tmp_path: Path, field: str, value: Any, message: str
) -> None:
    state = _state()
    _nested_set(state, field, value)
    path = tmp_path / "c.pt"
    save_checkpoint(path, state)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    line = str(info.value)
    assert message in line and line.startswith(f"checkpoint {path}: ") and "\n" not in line, line


def test_model_kind_needs_no_training_state(tmp_path: Path) -> None:
    state = _state()
    for key in ("optimizer", "scheduler", "rng", "iterator", "num_updates"):
        del state[key]
    save_checkpoint(tmp_path / "c.pt", state)
    with pytest.raises(CheckpointError, match="field 'optimizer' is missing"):
        load_checkpoint(tmp_path / "c.pt")
    assert load_checkpoint(tmp_path / "c.pt", kind="model")["best_metric"] == 1.0


def test_wrapper_prefixes_are_stripped_when_loading(tmp_path: Path) -> None:
    state = _state()
    state["model"] = {f"module.{k}": v for k, v in state["model"].items()}
    save_checkpoint(tmp_path / "c.pt", state)
    assert all(not k.startswith("module.") for k in load_checkpoint(tmp_path / "c.pt")["model"])


@pytest.mark.parametrize("name", list(Optimizer))
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_the_state_of_every_optimizer_validates(
    tmp_path: Path, name: Optimizer, momentum: float
) -> None:
    from nmt_preln.data.dictionary import Dictionary
    from nmt_preln.models.transformer import build_model

    d = Dictionary.from_symbols(SYMBOLS)
    model = build_model(ARCH, d, d)
    optimizer = build_optimizer(
        model.parameters(), OptimConfig(name=name, momentum=momentum), device="cpu"
    )
    for _ in range(2):
        model(torch.tensor([[5, 6, 2]]), torch.tensor([[2, 7]])).sum().backward()
        optimizer.step()
        optimizer.zero_grad()
    state = {**_state(), "model": model.state_dict(), "optimizer": optimizer.state_dict()}
    save_checkpoint(tmp_path / "c.pt", state)
    build_optimizer(model.parameters(), OptimConfig(name=name), device="cpu").load_state_dict(
        load_checkpoint(tmp_path / "c.pt")["optimizer"]
    )

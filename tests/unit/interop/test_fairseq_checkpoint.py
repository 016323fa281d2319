"""Converting fairseq transformer checkpoints: every tensor placed, nothing guessed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from nmt_preln.checkpoint.store import load_checkpoint, load_model_from_checkpoint
from nmt_preln.errors import UserError
from nmt_preln.interop.config import FairseqCheckpointImportConfig
from nmt_preln.interop.fairseq_checkpoint import fairseq_name, import_fairseq_checkpoint
from nmt_preln.models.transformer import sinusoidal_table

FIXTURES = Path(__file__).parents[2] / "fixtures" / "fairseq"


def _import(path: Path, data: Path, out: Path, **kw: object) -> Path:
    cfg = FairseqCheckpointImportConfig(path=str(path), out=str(out), data=str(data), **kw)  # type: ignore[arg-type]
    import_fairseq_checkpoint(cfg)
    return out


def _fairseq_weights(name: str) -> dict[str, torch.Tensor]:
    return torch.load(FIXTURES / f"{name}.pt", map_location="cpu", weights_only=False)["model"]


@pytest.mark.parametrize("name", ["pre-ln", "post-ln"])
def test_every_tensor_comes_from_its_fairseq_counterpart(
    tmp_path: Path, data_bin: Path, name: str
) -> None:
    out = _import(FIXTURES / f"{name}.pt", data_bin, tmp_path / "out.pt")
    model, state = load_model_from_checkpoint(out, device="cpu")
    theirs = _fairseq_weights(name)
    for key, tensor in model.state_dict().items():
        if key.endswith("embed.positions.weight"):
            continue
        assert torch.equal(tensor, theirs[fairseq_name(key)]), key
    assert state["source_lang"] == "de" and state["spm_models"] == {}
    assert "optimizer" not in state  # a model, not a run to resume


def test_sinusoidal_positions_become_fairseqs_rows_after_padding(
    tmp_path: Path, data_bin: Path
) -> None:
    model, _ = load_model_from_checkpoint(
        _import(FIXTURES / "pre-ln.pt", data_bin, tmp_path / "out.pt"), device="cpu"
    )
    table = model.encoder.embed.positions.weight  # (64, 16): token t at fairseq position t + 2
    assert torch.equal(table, sinusoidal_table(66, 16)[2:])
    assert torch.equal(model.decoder.embed.positions.weight, table)
    assert model.decoder.output_projection.weight is model.encoder.embed.embed_tokens.weight


def test_learned_positions_and_separate_embeddings(tmp_path: Path, data_bin: Path) -> None:
    model, _ = load_model_from_checkpoint(
        _import(FIXTURES / "post-ln.pt", data_bin, tmp_path / "out.pt"), device="cpu"
    )
    theirs = _fairseq_weights("post-ln")
    for side in ("encoder", "decoder"):
        ours = getattr(model, side).embed.positions.weight
        assert torch.equal(ours, theirs[f"{side}.embed_positions.weight"][2:66])
    assert not torch.equal(
        model.decoder.output_projection.weight, model.decoder.embed.embed_tokens.weight
    )


def test_a_tensor_without_a_place_is_refused_by_name(
    tmp_path: Path, data_bin: Path, edited: Callable[..., Path]
) -> None:
    def add(state: dict) -> None:
        state["model"]["decoder.layernorm_embedding.weight"] = torch.ones(16)

    with pytest.raises(
        UserError, match=r"tensor decoder\.layernorm_embedding\.weight has no place"
    ):
        _import(edited("pre-ln", edit=add), data_bin, tmp_path / "out.pt")
    assert not (tmp_path / "out.pt").exists()


def test_a_missing_or_misshapen_tensor_is_refused_by_name(
    tmp_path: Path, data_bin: Path, edited: Callable[..., Path]
) -> None:
    def drop(state: dict) -> None:
        del state["model"]["decoder.layers.1.fc2.bias"]

    with pytest.raises(UserError, match=r"has no tensor decoder\.layers\.1\.fc2\.bias"):
        _import(edited("post-ln", edit=drop), data_bin, tmp_path / "out.pt")

    def reshape(state: dict) -> None:
        state["model"]["encoder.layers.0.fc1.weight"] = torch.zeros(33, 16)

    with pytest.raises(UserError, match=r"encoder\.layers\.0\.ffn\.fc1\.weight is \(33, 16\)"):
        _import(edited("post-ln", edit=reshape), data_bin, tmp_path / "out.pt")


def test_refused_options_and_tasks(
    tmp_path: Path, data_bin: Path, edited: Callable[..., Path]
) -> None:
    with pytest.raises(UserError, match=r"--layernorm-embedding True .*no nmt-preln equivalent"):
        _import(edited("pre-ln", args={"layernorm_embedding": True}), data_bin, tmp_path / "o.pt")

    def multilingual(state: dict) -> None:
        state["cfg"]["task"]["_name"] = "translation_multi_simple_epoch"

    with pytest.raises(UserError, match=r"task 'translation_multi_simple_epoch' is not converted"):
        _import(edited("pre-ln", edit=multilingual), data_bin, tmp_path / "o.pt")


def test_another_dictionary_is_refused(tmp_path: Path, data_bin: Path) -> None:
    lines = (data_bin / "dict.en.txt").read_text(encoding="utf-8").splitlines()
    (data_bin / "dict.en.txt").write_text("\n".join(lines[:-8]) + "\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"dict\.en\.txt: 1112 symbols, but the target embeddings"):
        _import(FIXTURES / "post-ln.pt", data_bin, tmp_path / "out.pt")


def test_out_is_never_replaced_without_force(tmp_path: Path, data_bin: Path) -> None:
    out = tmp_path / "out.pt"
    out.write_bytes(b"keep")
    with pytest.raises(UserError, match=r"--out .*out\.pt: exists; pass --force"):
        _import(FIXTURES / "pre-ln.pt", data_bin, out)
    assert out.read_bytes() == b"keep"
    _import(FIXTURES / "pre-ln.pt", data_bin, out, force=True)
    assert load_checkpoint(out, kind="model")["target_lang"] == "en"


def test_data_defaults_to_the_checkpoints_task_data_and_says_when_absent(
    tmp_path: Path, edited: Callable[..., Path]
) -> None:
    def elsewhere(state: dict) -> None:
        state["cfg"]["task"]["data"] = "/nonexistent/data-bin"

    cfg = FairseqCheckpointImportConfig(
        path=str(edited("pre-ln", edit=elsewhere)), out=str(tmp_path / "o.pt")
    )
    with pytest.raises(
        UserError, match=r"give --data.*task\.data /nonexistent/data-bin is not here"
    ):
        import_fairseq_checkpoint(cfg)

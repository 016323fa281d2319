"""``nmt-import fairseq``: a fairseq ``transformer`` checkpoint -> an nmt-preln checkpoint.

The fairseq file is read by :mod:`nmt_preln.interop.fairseq_pickle` (nothing in it runs), its
options are mapped by :mod:`nmt_preln.interop.fairseq_arch`, and every tensor of the nmt-preln
model is taken from its fairseq counterpart by name (below). A fairseq tensor left over is
refused by name: it would be a feature the conversion does not know. The dictionaries come from
the data-bin's ``dict.{lang}.txt`` (fairseq keeps them there, not in the checkpoint).

The result is an nmt-preln checkpoint of a model (docs/INTERNALS.md "Checkpoints": weights,
config, dictionaries, languages) without training state: nmt-generate, nmt-export and
nmt-average read it, and nmt-train fine-tunes from it (``checkpoint.finetune_from_model``);
there is no fairseq run to resume, so it has no optimizer, schedule or data position.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from nmt_preln.checkpoint import store as ckpt
from nmt_preln.config import DataConfig, ModelConfig, TrainConfig
from nmt_preln.data.dictionary import Dictionary
from nmt_preln.errors import UserError
from nmt_preln.interop.config import FairseqCheckpointImportConfig
from nmt_preln.interop.fairseq_arch import model_config, resolve_args
from nmt_preln.interop.fairseq_data import find_language_pair
from nmt_preln.interop.fairseq_pickle import load_fairseq_state, model_args, task_args
from nmt_preln.models.placement import placement_of
from nmt_preln.models.transformer import build_model, sinusoidal_table

# fairseq tensors with no counterpart that carry nothing a model needs: state-dict version
# stamps, the sinusoidal module's dtype probe, and the copies of encoder-layer weights that
# fairseq 0.12 keeps for torch's fused inference path (BetterTransformer).
_IGNORED = re.compile(
    r"^(encoder|decoder)\.version$|\.embed_positions\._float_tensor$"
    r"|^encoder\.layers\.\d+\.(in_proj|out_proj|fc1|fc2)_(weight|bias)$"
)
# nmt-preln name -> fairseq name (the position tables are handled on their own).
_RENAMES = [
    (r"\.embed\.embed_tokens\.", ".embed_tokens."),
    (r"\.cross_attn\.", ".encoder_attn."),
    (r"\.self_attn_residual\.(pre|post)_norm\.", ".self_attn_layer_norm."),
    (r"\.cross_attn_residual\.(pre|post)_norm\.", ".encoder_attn_layer_norm."),
    (r"\.ffn_residual\.(pre|post)_norm\.", ".final_layer_norm."),
    (r"\.ffn\.(fc[12])\.", r".\1."),
    (r"^(encoder|decoder)\.final_norm\.", r"\1.layer_norm."),
]


@dataclass
class ImportResult:
    """What :func:`import_fairseq_checkpoint` wrote."""

    out: str
    arch: ModelConfig
    data: str
    source_lang: str
    target_lang: str


def fairseq_name(name: str) -> str:
    """The fairseq state-dict name of nmt-preln tensor ``name`` (positions excepted)."""
    for pattern, replacement in _RENAMES:
        name = re.sub(pattern, replacement, name)
    return name


def _positions(
    weights: dict[str, Tensor], side: str, *, args: dict[str, Any], rows: int, pad: int
) -> Tensor:
    """(rows, d_model) fairseq's positions of tokens 0..rows-1 (fairseq rows pad+1 on)."""
    first = pad + 1
    if args[f"{side}_learned_pos"]:
        table = weights[f"{side}.embed_positions.weight"]  # (max_positions + pad + 1, D)
        return table[first : first + rows].clone()
    return sinusoidal_table(first + rows, int(args["encoder_embed_dim"]))[first:]  # (rows, D)


def convert_weights(
    fairseq: dict[str, Tensor],
    expected: dict[str, Tensor],
    *,
    args: dict[str, Any],
    pad: int,
    path: str,
) -> dict[str, Tensor]:
    """nmt-preln's state dict (``expected`` gives names and shapes) from fairseq's weights.

    Raises:
        UserError: a tensor is missing, of another shape, or left over (named).
    """
    used: set[str] = set()
    out: dict[str, Tensor] = {}
    for name, target in expected.items():
        side = name.split(".", 1)[0]
        if name.endswith(".embed.positions.weight"):
            used.add(f"{side}.embed_positions.weight")
            tensor = _positions(fairseq, side, args=args, rows=target.size(0), pad=pad)
        else:
            source = fairseq_name(name)
            if source == "decoder.output_projection.weight" and source not in fairseq:
                source = "decoder.embed_tokens.weight"  # older fairseq: tied, no own entry
            if source not in fairseq:
                raise UserError(f"{path}: has no tensor {source} (for nmt-preln's {name})")
            used.add(source)
            tensor = fairseq[source]
        if tuple(tensor.shape) != tuple(target.shape):
            raise UserError(
                f"{path}: {name} is {tuple(tensor.shape)} in the checkpoint, "
                f"{tuple(target.shape)} for its options"
            )
        out[name] = tensor.to(target.dtype)
    extra = [k for k in fairseq if k not in used and not _IGNORED.search(k)]
    if extra:
        raise UserError(
            f"{path}: tensor {extra[0]} has no place in nmt-preln's Transformer (a feature the "
            f"conversion does not know); the checkpoint is not converted"
        )
    return out


def _check_task(task: dict[str, Any], *, path: str) -> None:
    name = task.get("_name") or task.get("task") or "translation"
    if name != "translation":
        raise UserError(
            f"{path}: fairseq task {name!r} is not converted (only 'translation': other tasks "
            f"add language tokens or change the inputs)"
        )


def _data_dir(cfg: FairseqCheckpointImportConfig, task: dict[str, Any]) -> str:
    """--data, else the first directory of the checkpoint's task.data when it exists here."""
    if cfg.data:
        if not os.path.isdir(cfg.data):
            raise UserError(f"--data {cfg.data}: directory not found")
        return cfg.data
    stored = str(task.get("data") or "").split(":")[0]
    if stored and os.path.isdir(stored):
        return stored
    raise UserError(
        f"{cfg.path}: give --data, the data-bin with the model's dict.*.txt (the checkpoint's "
        f"task.data {stored or 'is empty'}{' is not here' if stored else ''})"
    )


def _languages(
    cfg: FairseqCheckpointImportConfig, task: dict[str, Any], data: str
) -> tuple[str, str]:
    src = cfg.source_lang or task.get("source_lang")
    tgt = cfg.target_lang or task.get("target_lang")
    if src and tgt:
        return str(src), str(tgt)
    found = find_language_pair(data, source_lang=src, target_lang=tgt)
    return found


def _load_dictionary(data: str, lang: str, *, rows: int, side: str, path: str) -> Dictionary:
    dict_path = os.path.join(data, f"dict.{lang}.txt")
    if not os.path.isfile(dict_path):
        raise UserError(f"{dict_path}: not found (the {side} dictionary of {path})")
    dictionary = Dictionary.load(dict_path)
    if len(dictionary) != rows:
        raise UserError(
            f"{dict_path}: {len(dictionary)} symbols, but the {side} embeddings of {path} have "
            f"{rows} rows: not the dictionary the model was trained with"
        )
    return dictionary


def _training_state(
    *,
    weights: dict[str, Tensor],
    arch: ModelConfig,
    dicts: tuple[Dictionary, Dictionary],
    langs: tuple[str, str],
    data: str,
    source: dict[str, Any],
) -> dict[str, Any]:
    """An nmt-preln checkpoint of the model: weights, config, dictionaries, languages."""
    config = TrainConfig(
        arch=arch,
        data=DataConfig(path=os.path.abspath(data), source_lang=langs[0], target_lang=langs[1]),
    )
    return {
        "format_version": ckpt.FORMAT_VERSION,
        "model": weights,
        "config": ckpt.config_to_plain(config),
        "src_dict": list(dicts[0].symbols),
        "tgt_dict": list(dicts[1].symbols),
        "spm_models": {},  # fairseq data is segmented outside: --remove-bpe when decoding
        "source_lang": langs[0],
        "target_lang": langs[1],
        "imported_from": source,
    }


def import_fairseq_checkpoint(cfg: FairseqCheckpointImportConfig) -> ImportResult:
    """Convert ``cfg.path`` (fairseq) into ``cfg.out`` (nmt-preln), checking every tensor.

    Raises:
        UserError: unreadable or unsafe file, an architecture or option that is not
            converted (named), dictionaries that do not fit, ``--out`` exists without --force.
    """
    if os.path.exists(cfg.out) and not cfg.force:
        raise UserError(f"--out {cfg.out}: exists; pass --force to replace it")
    state = load_fairseq_state(cfg.path)
    args = resolve_args(model_args(state, path=cfg.path), path=cfg.path)
    task = task_args(state)
    _check_task(task, path=cfg.path)
    arch = model_config(args, path=cfg.path)
    data = _data_dir(cfg, task)
    langs = _languages(cfg, task, data)
    fairseq_weights = state["model"]
    rows = []
    for side in ("encoder", "decoder"):
        embed = fairseq_weights.get(f"{side}.embed_tokens.weight")
        if not isinstance(embed, Tensor):
            raise UserError(f"{cfg.path}: has no tensor {side}.embed_tokens.weight")
        rows.append(embed.size(0))
    dicts = (
        _load_dictionary(data, langs[0], rows=rows[0], side="source", path=cfg.path),
        _load_dictionary(data, langs[1], rows=rows[1], side="target", path=cfg.path),
    )
    model = build_model(arch, *dicts)
    weights = convert_weights(
        fairseq_weights, model.state_dict(), args=args, pad=dicts[0].pad, path=cfg.path
    )
    model.load_state_dict(weights)
    history = state.get("optimizer_history") or [{}]
    source = {
        "format": "fairseq",
        "path": os.path.abspath(cfg.path),
        "arch": args["arch"],
        "num_updates": int((history[-1] or {}).get("num_updates", 0)),
    }
    with torch.no_grad():
        result = _training_state(
            weights=model.state_dict(),
            arch=arch,
            dicts=dicts,
            langs=langs,
            data=data,
            source=source,
        )
    ckpt.save_checkpoint(cfg.out, result)
    return ImportResult(
        out=cfg.out, arch=arch, data=data, source_lang=langs[0], target_lang=langs[1]
    )


def finetune_overrides(result: ImportResult) -> list[str]:
    """nmt-train overrides that rebuild the imported architecture (for fine-tuning)."""
    arch = ckpt.config_to_plain(result.arch)
    group = placement_of(result.arch.norm_position).arch_option
    values = {k: str(v).lower() if isinstance(v, bool) else v for k, v in arch.items()}
    return [f"+arch={group}", *(f"arch.{k}={v}" for k, v in values.items())]

"""Export a checkpoint's model as safetensors (``nmt-export --format safetensors``).

The directory holds what serving needs and nothing of training (no optimizer, no RNG):

    OUT/model.safetensors     the weights (tied embeddings stored once, see safetensors' save_model)
    OUT/config.json           {"format_version", "arch": ModelConfig as plain JSON, "source_lang",
                               "target_lang", "src_dict": [...], "tgt_dict": [...],
                               "spm_models": {language: file name}}
    OUT/spm.model             (or spm.src.model + spm.tgt.model) the SentencePiece model(s)

File names are fixed, never built from the checkpoint's content; ``spm_models`` in config.json
says which language each SentencePiece file is for.

:func:`load_safetensors` rebuilds the model from such a directory without pickle.
"""

from __future__ import annotations

import importlib
import json
import shutil
from pathlib import Path
from typing import Any

import torch

from nmt_preln.checkpoint.schema import Fields, check_symbols
from nmt_preln.checkpoint.store import load_model_from_checkpoint, model_config_from_plain
from nmt_preln.data.dictionary import Dictionary
from nmt_preln.errors import UserError
from nmt_preln.export.ctranslate2 import write_spm_models
from nmt_preln.models.transformer import Transformer, build_model

EXPORT_FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"


def _safetensors_torch() -> Any:
    try:
        return importlib.import_module("safetensors.torch")
    except ImportError as e:
        raise UserError(
            "--format safetensors needs the safetensors package (pip install 'nmt-preln[export]')"
        ) from e


def export_safetensors(path: str, out: str, *, force: bool = False) -> Path:
    """Write the model of checkpoint ``path`` to ``out`` (see the module docstring).

    Args:
        path: a checkpoint written by nmt-train.
        out: output directory (must not exist unless ``force``).
        force: replace ``out`` when it exists.

    Returns:
        The output directory.
    """
    st = _safetensors_torch()
    target = Path(out)
    if target.exists() and not force:
        raise UserError(f"{out} already exists (use --force to replace it)")
    model, state = load_model_from_checkpoint(path, device="cpu")
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    st.save_model(model, str(target / WEIGHTS), metadata={"format": "pt"})
    spm_files = write_spm_models(state, target)
    config = {
        "format_version": EXPORT_FORMAT_VERSION,
        "arch": state["config"]["arch"],
        "source_lang": state.get("source_lang"),
        "target_lang": state.get("target_lang"),
        "src_dict": state["src_dict"],
        "tgt_dict": state["tgt_dict"],
        "spm_models": spm_files,
    }
    (target / CONFIG).write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
    return target


def load_safetensors(directory: str, *, device: torch.device | str = "cpu") -> Transformer:
    """Rebuild the model of an exported directory, in eval mode on ``device``.

    Raises:
        UserError: config.json is unreadable or a field is missing or wrong (named), or the
            weights do not fit it.
    """
    st = _safetensors_torch()
    config_path = Path(directory) / CONFIG
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"{config_path}: not a readable export config ({e})") from e
    c = Fields(str(config_path))
    for key in ("arch", "src_dict", "tgt_dict"):
        if key not in c.mapping(config, "(top level)"):
            c.fail(key, "is missing")
    arch = model_config_from_plain(config["arch"], source=str(config_path))
    model = build_model(
        arch,
        Dictionary.from_symbols(check_symbols(c, config["src_dict"], "src_dict")),
        Dictionary.from_symbols(check_symbols(c, config["tgt_dict"], "tgt_dict")),
    )
    try:
        st.load_model(model, str(Path(directory) / WEIGHTS), device=str(device))
    except (OSError, RuntimeError) as e:
        reason = (str(e).splitlines() or [type(e).__name__])[0]
        raise UserError(f"{Path(directory) / WEIGHTS}: does not fit {config_path}: {reason}") from e
    return model.to(device).eval()

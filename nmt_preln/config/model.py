"""The model's settings (``arch.*``): an encoder-decoder Transformer and its own range rules."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from nmt_preln.config.fields import refuse_first

# Its members are the placements of nmt_preln/models/placement.py (the one place that says
# what each builds), so a new placement does not touch this file.
from nmt_preln.models.placement import NormPosition as NormPosition

# Longest sequence a model may be built for (the sinusoidal table is built, not loaded): a
# checkpoint claiming more is refused on loading.
MAX_POSITIONS = 1 << 20


class Activation(StrEnum):
    relu = "relu"
    gelu = "gelu"


class InitMethod(StrEnum):
    """Initialization of the projection weights (embeddings are always N(0, d_model^-0.5))."""

    xavier_uniform = "xavier_uniform"  # fairseq's default, used in the paper's analysis
    xavier_normal = "xavier_normal"


@dataclass
class ModelConfig:
    """An encoder-decoder Transformer; the defaults are fairseq's ``transformer_iwslt_de_en``."""

    name: str = "transformer_iwslt_de_en"  # preset name, recorded in checkpoints
    # pre, post, ...: see nmt_preln/models/placement.py (which norms, scaling, final LN)
    norm_position: NormPosition = NormPosition.pre
    encoder_layers: int = 6  # encoder blocks
    decoder_layers: int = 6  # decoder blocks
    d_model: int = 512  # embedding and hidden width, encoder and decoder
    ffn_dim: int = 1024  # inner width of the feed-forward networks
    num_heads: int = 4  # attention heads; must divide d_model
    dropout: float = 0.3  # dropout on embeddings and residual branches
    attention_dropout: float = 0.0  # dropout on attention weights
    activation_dropout: float = 0.0  # dropout after the FFN activation
    activation: Activation = Activation.relu  # FFN activation
    learned_positions: bool = False  # learned position embeddings instead of sinusoidal
    max_positions: int = 1024  # longest sequence the position table covers
    share_decoder_input_output_embed: bool = True  # tie decoder embedding and output projection
    share_all_embeddings: bool = False  # requires a joined dictionary
    init: InitMethod = InitMethod.xavier_uniform  # initialization of the projection weights

    def validate(self) -> None:
        """Refuse sizes and rates no model can have (what depends on the data is checked later).

        Raises:
            UserError: naming the ``arch.*`` option.
        """
        refuse_first(self._rules())

    def _rules(self) -> Iterator[tuple[bool, str]]:
        # A generator: a rule is evaluated only once the ones before it hold (num_heads >= 1
        # before the modulo).
        for name in ("encoder_layers", "decoder_layers", "d_model", "ffn_dim", "num_heads"):
            yield getattr(self, name) < 1, f"arch.{name}={getattr(self, name)} must be >= 1"
        n = self.max_positions  # </s> plus at least one token
        yield n < 2, f"arch.max_positions={n} must be >= 2"
        yield n > MAX_POSITIONS, f"arch.max_positions={n} must be <= {MAX_POSITIONS}"
        yield (
            self.d_model % self.num_heads != 0,
            f"arch.num_heads={self.num_heads} does not divide arch.d_model={self.d_model}",
        )
        for name in ("dropout", "attention_dropout", "activation_dropout"):
            value = getattr(self, name)
            yield not 0.0 <= value < 1.0, f"arch.{name}={value} is not in [0, 1)"

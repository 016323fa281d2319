"""Every setting of nmt-preln: one typed dataclass field, one name, one default.

The YAML files under ``conf/`` only hold values that differ between options; the types and
defaults live here and are registered as Hydra structured configs by :func:`register_configs`.
Library code receives these dataclasses (never a ``DictConfig``), so it runs without Hydra.
The argparse front ends of ``nmt-preprocess`` and ``nmt-generate`` are generated from
:class:`PreprocessConfig` and :class:`GenerateConfig` by :mod:`nmt_preln.flags`.

Field metadata ``help`` is the one-line help text shown by those front ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from omegaconf import MISSING

# Its members are the placements of nmt_preln/models/placement.py (the one place that says
# what each builds), so a new placement does not touch this file.
from nmt_preln.models.placement import NormPosition as NormPosition


def cli_help(text: str, **extra: Any) -> dict[str, Any]:
    """Field metadata: the one-line ``--help`` text (and argparse extras such as ``const``)."""
    return {"help": text, **extra}


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


class Optimizer(StrEnum):
    adam = "adam"
    adamw = "adamw"
    radam = "radam"
    sgd = "sgd"


@dataclass
class OptimConfig:
    name: Optimizer = Optimizer.adam  # optimizer
    lr: float = 5e-4  # peak learning rate (lr_max in the paper)
    betas: list[float] = field(default_factory=lambda: [0.9, 0.98])  # Adam's (beta1, beta2)
    eps: float = 1e-8  # Adam's epsilon
    weight_decay: float = 0.0  # AdamW: decoupled; adam/radam/sgd: L2 added to the gradient
    momentum: float = 0.0  # SGD only
    clip_norm: float = 0.0  # 0 disables gradient clipping
    fused: bool = True  # use torch's fused kernels where the device supports them


class ScheduleName(StrEnum):
    inverse_sqrt = "inverse_sqrt"  # linear warm-up, then lr * sqrt(warmup / step)
    constant = "constant"  # optional linear warm-up, then constant
    step_decay = "step_decay"  # constant, times decay_factor from decay_epoch on (paper, IWSLT)
    step_inverse_sqrt = (
        "step_inverse_sqrt"  # constant, then inverse sqrt from decay_epoch (paper, WMT)
    )
    linear = "linear"  # warm-up, then linear decay to min_lr at total_updates
    cosine = "cosine"  # warm-up, then cosine decay to min_lr at total_updates


@dataclass
class ScheduleConfig:
    """Learning-rate schedule; see :mod:`nmt_preln.train.schedule` for the formulas."""

    name: ScheduleName = ScheduleName.inverse_sqrt  # learning-rate schedule
    warmup_updates: int = 4000  # 0 means no warm-up at all (the Pre-LN setting)
    warmup_init_lr: float = 1e-7  # learning rate at update 0 of the warm-up
    min_lr: float = 0.0  # floor of the linear/cosine decay
    decay_epoch: int = 8  # step schedules: first epoch of the decay
    decay_factor: float = 0.1  # step_decay: lr multiplier from decay_epoch on
    total_updates: int = 0  # for linear/cosine; 0 means train.max_update


@dataclass
class DataConfig:
    path: str = MISSING  # a directory written by nmt-preprocess
    source_lang: str | None = None  # None: read from the directory's manifest
    target_lang: str | None = None  # None: read from the directory's manifest
    train_subset: str = "train"  # split trained on
    valid_subset: str = "valid"  # split validated on
    max_tokens: int = 4096  # per batch and per GPU, source or target side, padding included
    batch_size: int = 0  # maximum sentences per batch; 0 means no limit beyond max_tokens
    max_source_positions: int = 1024  # longer training pairs are skipped
    max_target_positions: int = 1024  # longer training pairs are skipped
    num_workers: int = 1  # background batch-loading threads; 0 loads in the training loop


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


class BestMetric(StrEnum):
    loss = "loss"  # label-smoothed validation loss: lower is better
    nll = "nll"  # lower is better
    ppl = "ppl"  # lower is better
    bleu = "bleu"  # higher is better; needs validate_bleu


@dataclass
class CheckpointConfig:
    save_dir: str = "checkpoints"  # checkpoints, train_log.jsonl and (by default) TensorBoard logs
    save_interval: int = 1  # epochs between checkpoint_<epoch>.pt files
    save_interval_updates: int = 0  # 0 disables checkpoint_<epoch>_<update>.pt files
    keep_last_epochs: int = -1  # -1 keeps all
    keep_interval_updates: int = -1  # -1 keeps all checkpoint_<epoch>_<update>.pt
    resume: bool = True  # continue from save_dir/checkpoint_last.pt when it exists
    restore_file: str | None = None  # start from this checkpoint instead
    best_metric: BestMetric = BestMetric.loss  # what checkpoint_best.pt and patience follow
    # A new run from these weights only (used when save_dir has no checkpoint_last.pt yet;
    # afterwards the run resumes normally). Everything else starts fresh, as in fairseq.
    finetune_from_model: str | None = None
    # What not to take from the checkpoint that is loaded (fairseq's --reset-* flags).
    reset_optimizer: bool = False  # fresh optimizer, loss scaler and update count
    reset_lr_scheduler: bool = False  # fresh schedule state (e.g. the step decay's start)
    reset_dataloader: bool = False  # start at epoch 1, batch 0
    reset_meters: bool = False  # forget the best metric and the patience count


class LogFormat(StrEnum):
    text = "text"  # "<time> | epoch 001 | update 000100 | loss ..." lines
    json = "json"  # one JSON object per line on stdout (fairseq's --log-format json)


@dataclass
class TrainConfig:
    """The primary config of ``nmt-train``; ``arch`` is chosen with ``+arch=...``."""

    arch: ModelConfig = MISSING
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    hardware: HardwareConfig = field(default_factory=HardwareConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    label_smoothing: float = 0.1  # epsilon of the label-smoothed cross-entropy
    update_freq: int = 1  # gradient accumulation: batches per optimizer update
    max_epoch: int = 0  # 0 means no limit
    max_update: int = 0  # 0 means no limit
    # Stop (validating and saving first) after this much training time of this process,
    # validation and saving excluded (fairseq's --stop-time-hours counts them); 0: no limit.
    stop_time_hours: float = 0.0
    patience: int = -1  # stop after this many validations without improvement; -1 never
    validate_interval: int = 1  # epochs
    validate_interval_updates: int = 0  # 0 disables mid-epoch validation
    validate_bleu: bool = False  # also decode the valid set and report BLEU
    # The search of validation BLEU (fairseq's --eval-bleu-args), decoded by nmt-generate's
    # Translator: output length at most max_len_a * source length + max_len_b.
    validate_bleu_beam: int = 1
    validate_bleu_lenpen: float = 1.0  # length penalty of the validation search
    validate_bleu_max_len_a: float = 1.2  # max output length = a * source length + b
    validate_bleu_max_len_b: int = 10  # max output length = a * source length + b
    validate_bleu_print_samples: int = 0  # print the first N translations at every validation
    log_interval: int = 100  # updates between log lines
    log_format: LogFormat = LogFormat.text  # text lines, or one JSON object per line
    tensorboard_dir: str | None = None  # None: <save_dir>/tensorboard
    log_layer_grad_norms: bool = True  # per-layer FFN/attention gradient norms in TensorBoard
    progress_bar: bool = True  # a tqdm-like bar on a terminal; plain log lines otherwise
    seed: int = 1  # seeds python, numpy, torch and the batch order


class Segmentation(StrEnum):
    sentencepiece = "sentencepiece"  # learn or reuse a SentencePiece model
    none = "none"  # the text is already segmented (e.g. fairseq's IWSLT14 "@@ " BPE)


class SpmModelType(StrEnum):
    bpe = "bpe"
    unigram = "unigram"


@dataclass
class PreprocessConfig:
    """``nmt-preprocess``; flag names follow fairseq-preprocess (``--source-lang`` ...)."""

    source_lang: str = field(default=MISSING, metadata=cli_help("source language suffix, e.g. de"))
    target_lang: str = field(default=MISSING, metadata=cli_help("target language suffix, e.g. en"))
    trainpref: str | None = field(
        default=None, metadata=cli_help("train file prefix (PREFIX.LANG)")
    )
    validpref: str | None = field(default=None, metadata=cli_help("comma-separated valid prefixes"))
    testpref: str | None = field(default=None, metadata=cli_help("comma-separated test prefixes"))
    destdir: str = field(default="data-bin", metadata=cli_help("output directory"))
    joined_dictionary: bool = field(default=False, metadata=cli_help("one dictionary for both"))
    srcdict: str | None = field(default=None, metadata=cli_help("reuse this source dictionary"))
    tgtdict: str | None = field(default=None, metadata=cli_help("reuse this target dictionary"))
    nwordssrc: int = field(default=-1, metadata=cli_help("source dictionary size limit, -1 none"))
    nwordstgt: int = field(default=-1, metadata=cli_help("target dictionary size limit, -1 none"))
    # fairseq's Dictionary.finalize keeps a symbol when count >= threshold (0 and 1 keep all).
    thresholdsrc: int = field(
        default=0, metadata=cli_help("map source words seen < N times to unk")
    )
    thresholdtgt: int = field(
        default=0, metadata=cli_help("map target words seen < N times to unk")
    )
    # SentencePiece training/encoding threads; 0 = every available core (fairseq's default is 1).
    workers: int = field(default=0, metadata=cli_help("threads, 0 = all cores"))
    segmentation: Segmentation = field(
        default=Segmentation.sentencepiece,
        metadata=cli_help("sentencepiece or none (pre-segmented)"),
    )
    spm_model: str | None = field(default=None, metadata=cli_help("reuse this SentencePiece model"))
    spm_vocab_size: int = field(default=8000, metadata=cli_help("SentencePiece vocabulary size"))
    spm_model_type: SpmModelType = field(
        default=SpmModelType.bpe, metadata=cli_help("bpe or unigram")
    )
    spm_character_coverage: float = field(default=1.0, metadata=cli_help("SentencePiece coverage"))
    spm_separate: bool = field(
        default=False, metadata=cli_help("one SentencePiece model per language")
    )
    min_len: int = field(
        default=1, metadata=cli_help("drop train pairs with a side shorter (tokens)")
    )
    max_len: int = field(
        default=250, metadata=cli_help("drop train pairs with a side longer (tokens)")
    )
    max_len_ratio: float = field(
        default=0.0, metadata=cli_help("drop train pairs past this ratio, 0 off")
    )
    overwrite: bool = field(
        default=False, metadata=cli_help("replace an existing different dataset")
    )


class OutputFormat(StrEnum):
    fairseq = "fairseq"  # S-/T-/H-/D-/P- lines, scores in base 2
    plain = "plain"  # one detokenized translation per input line, in input order


@dataclass
class SearchConfig:
    """What beam search, greedy search and sampling take (``nmt-generate``'s search flags).

    Validation BLEU fills one from ``validate_bleu_*``; nothing else of the command is needed.
    """

    beam: int = field(default=5, metadata=cli_help("beam size; 1 is greedy"))
    nbest: int = field(default=1, metadata=cli_help("hypotheses to print per sentence"))
    lenpen: float = field(default=1.0, metadata=cli_help("length penalty: score / length^lenpen"))
    max_len_a: float = field(default=0.0, metadata=cli_help("max length = a * src_len + b"))
    max_len_b: int = field(default=200, metadata=cli_help("max length = a * src_len + b"))
    min_len: int = field(default=1, metadata=cli_help("minimum target length"))
    unkpen: float = field(default=0.0, metadata=cli_help("penalty subtracted from <unk> scores"))
    no_repeat_ngram_size: int = field(default=0, metadata=cli_help("block repeated n-grams, 0 off"))
    sampling: bool = field(default=False, metadata=cli_help("sample instead of beam search"))
    sampling_topk: int = field(default=-1, metadata=cli_help("sample from the k best, -1 off"))
    sampling_topp: float = field(default=-1.0, metadata=cli_help("nucleus sampling mass, -1 off"))
    # Divides the logits in beam search too, as fairseq's --temperature does.
    temperature: float = field(default=1.0, metadata=cli_help("softmax temperature (logits / T)"))
    seed: int = field(default=1, metadata=cli_help("random seed (sampling), 0 to 2**64-1"))
    prefix_size: int = field(
        default=0, metadata=cli_help("force the first N reference tokens as the target prefix")
    )
    constraints: str | None = field(
        default=None,
        metadata=cli_help(
            "lexically constrained decoding (ordered or unordered); constraints follow the "
            "source line, tab-separated",
            const="ordered",
        ),
    )
    diverse_beam_groups: int = field(
        default=-1, metadata=cli_help("diverse beam search: number of groups, -1 off")
    )
    diverse_beam_strength: float = field(
        default=0.5, metadata=cli_help("diverse beam search: penalty for tokens of earlier groups")
    )
    # Bounds beam x batch x length x vocabulary before decoding: batches are shrunk to fit and
    # a sentence that alone does not fit is refused, instead of the allocator failing.
    max_search_memory_mb: int = field(
        default=0,
        metadata=cli_help("memory for the search's tensors in MiB; 0: 3/4 of the free memory"),
    )


@dataclass
class GenerateConfig:
    """``nmt-generate``; flag names follow fairseq-generate and fairseq-interactive."""

    data: str = field(
        default=MISSING,
        metadata=cli_help("data directory of nmt-preprocess (or nmt-import fairseq-data)"),
    )
    path: str = field(
        default=MISSING, metadata=cli_help("checkpoint(s), colon-separated = ensemble")
    )
    # None = "test"; an explicit split together with --input is refused (it would be ignored).
    gen_subset: str | None = field(
        default=None, metadata=cli_help("binarized split to translate (default: test)")
    )
    input: str | None = field(default=None, metadata=cli_help("raw text file, or - for stdin"))
    source_lang: str | None = field(default=None, metadata=cli_help("default: from the data dir"))
    target_lang: str | None = field(default=None, metadata=cli_help("default: from the data dir"))
    # beam, lenpen, sampling, ... (flags of their own: --beam, --lenpen ...)
    search: SearchConfig = field(default_factory=SearchConfig)
    batch_size: int = field(default=128, metadata=cli_help("maximum sentences per batch"))
    max_tokens: int = field(default=0, metadata=cli_help("maximum source tokens per batch, 0 off"))
    buffer_size: int = field(default=256, metadata=cli_help("stdin lines translated per chunk"))
    output_format: OutputFormat = field(
        default=OutputFormat.fairseq, metadata=cli_help("fairseq lines or plain translations")
    )
    results_path: str | None = field(default=None, metadata=cli_help("write output to this dir"))
    quiet: bool = field(default=False, metadata=cli_help("print only the scores"))
    # fairseq's alias of --post-process (the same option): giving both with different values
    # is refused.
    remove_bpe: str | None = field(
        default=None, metadata=cli_help("the same as --post-process (fairseq's alias)", const="@@ ")
    )
    device: Device = field(default=Device.auto, metadata=cli_help("auto, cpu or cuda"))
    precision: Precision = field(default=Precision.fp32, metadata=cli_help("fp32, bf16 or fp16"))
    # fairseq-generate's options for scoring, forcing and inspecting translations. A field whose
    # metadata has "const" takes an optional value (argparse nargs="?"), as fairseq's flag does.
    score_reference: bool = field(
        default=False, metadata=cli_help("score the reference translations instead of decoding")
    )
    # fairseq 0.12's --print-alignment [hard|soft]; "hard" without a value.
    print_alignment: str | None = field(
        default=None,
        metadata=cli_help(
            "print A- lines: hard = srcpos-tgtpos pairs, soft = each target token's attention "
            "over the source",
            const="hard",
        ),
    )
    replace_unk: str | None = field(
        default=None,
        metadata=cli_help(
            "replace <unk> by the aligned source token, or its entry in this alignment "
            "dictionary file",
            const="",
        ),
    )
    post_process: str | None = field(
        default=None,
        metadata=cli_help(
            "post-process S-/T-/H- text as fairseq does: sentencepiece, subword_nmt, @@ , "
            "@@, wordpiece, letter, silence, _EOW or none",
            const="subword_nmt",
        ),
    )


def register_configs() -> None:
    """Register the dataclasses with Hydra's ConfigStore (called by the CLI, not the library)."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    # The primary schema types every group's key, so the YAML options need no schema of their own.
    store.store(name="train_schema", node=TrainConfig)
    store.store(name="preprocess_schema", node=PreprocessConfig)
    store.store(name="generate_schema", node=GenerateConfig)

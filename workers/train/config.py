"""What a detector fine-tuning run is given and what it reports, as plain dataclasses.

Nothing here imports torch: the web process validates launches with `SFTConfig` and stores what
the callbacks and the result carry.
"""

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

PRECISIONS = ("auto", "bf16", "fp32")
LR_SCHEDULES = ("cosine", "linear", "constant")

# Fields that shape the optimisation: a run resumed from a checkpoint must keep them, or it would
# silently become a different run than the one its checkpoint belongs to.
RESUME_MUST_MATCH = (
    "base_model",
    "rank",
    "alpha",
    "dropout",
    "target_modules",
    "train_vision",
    "epochs",
    "learning_rate",
    "lr_schedule",
    "batch_size",
    "grad_accumulation",
    "weight_decay",
    "warmup_ratio",
    "max_grad_norm",
    "seed",
    "max_references",
    "reference_max_pixels",
    "target_max_pixels",
)


@dataclass(frozen=True)
class SFTConfig:
    """LoRA fine-tuning of the character detector (paper §5: PEFT LoRA, 5 epochs, lr 1e-4).

    `base_model` is a hub id (e.g. Qwen/Qwen2.5-VL-7B-Instruct) or a local folder (the tiny
    profile), loaded with `AutoModelForImageTextToText.from_pretrained` like the detector itself.
    """

    base_model: str
    output_dir: str
    # LoRA
    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: str | tuple[str, ...] = "all-linear"  # PEFT's names; "all-linear" spares lm_head
    train_vision: bool = False  # frozen by default: its features are then computed once per image
    # optimisation
    epochs: int = 5
    learning_rate: float = 1e-4
    lr_schedule: str = "cosine"  # after a linear warmup
    warmup_ratio: float = 0.03
    batch_size: int = 4  # examples per micro-batch and process
    grad_accumulation: int = 1
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    seed: int = 0
    # prompt and images: the detector's own settings, so training sees what inference sees
    max_references: int = 1
    reference_max_pixels: int = 448 * 448
    target_max_pixels: int = 1344 * 756
    # validation: greedy generation parsed like real detections, every epoch
    max_new_tokens: int = 64
    eval_batch_size: int = 8
    constrained: bool = False  # decode as the detector's model version does (ModelSpec.constrained)
    eval_before_training: bool = True  # an "epoch 0" row: the untrained model's scores
    # speed and memory
    precision: str = "auto"  # auto: bf16 on a GPU that has it, fp32 on CPU
    # None: off (it costs ~⅓ more compute and rules out the shared prefix) until a CUDA
    # out-of-memory error turns it on for the rest of the run (single process only).
    gradient_checkpointing: bool | None = None
    cache_vision_features: bool = True  # only takes effect while the vision tower is frozen
    share_prefix: bool = True  # the references + instructions are computed once per micro-batch

    def __post_init__(self) -> None:
        if not self.base_model:
            raise ValueError("base_model is required (a hub id or a local folder)")
        if not self.output_dir:
            raise ValueError("output_dir is required")
        if isinstance(self.target_modules, list):  # from JSON
            object.__setattr__(self, "target_modules", tuple(self.target_modules))
        _require(1 <= self.rank <= 1024, "rank must be between 1 and 1024")
        _require(self.alpha > 0, "alpha must be positive")
        _require(0.0 <= self.dropout < 1.0, "dropout must be in [0, 1)")
        _require(1 <= self.epochs <= 1000, "epochs must be between 1 and 1000")
        _require(0.0 < self.learning_rate < 1.0, "learning_rate must be in (0, 1)")
        _require(self.lr_schedule in LR_SCHEDULES, f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}")
        _require(0.0 <= self.warmup_ratio < 1.0, "warmup_ratio must be in [0, 1)")
        _require(self.batch_size >= 1 and self.grad_accumulation >= 1, "batch_size and grad_accumulation must be ≥ 1")
        _require(self.weight_decay >= 0.0 and self.max_grad_norm > 0.0, "weight_decay ≥ 0 and max_grad_norm > 0")
        _require(self.max_references >= 1, "max_references must be ≥ 1")
        _require(
            self.reference_max_pixels >= 28 * 28 and self.target_max_pixels >= 28 * 28,
            "pixel budgets must be at least 28×28",
        )
        _require(self.max_new_tokens >= 1 and self.eval_batch_size >= 1, "max_new_tokens and eval_batch_size ≥ 1")
        _require(self.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}")

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "SFTConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"Unknown SFTConfig fields: {', '.join(unknown)}")
        return cls(**values)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass(frozen=True)
class TrainExample:
    """One gold frame: `names` are the roster names of the characters in it (any order)."""

    key: str  # what the app identifies the frame by (e.g. the asset id)
    image_path: Path
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_path", Path(self.image_path))
        object.__setattr__(self, "names", tuple(self.names))


@dataclass(frozen=True)
class StepMetrics:
    step: int  # optimizer steps done, counted over the whole run (1-based)
    total_steps: int
    epoch: int  # 1-based
    loss: float  # mean over this step's answer tokens
    learning_rate: float
    seconds: float  # wall time of this step


@dataclass(frozen=True)
class EpochMetrics:
    """Validation after an epoch (epoch 0: before training). Scores are None without validation frames."""

    epoch: int
    train_loss: float | None  # mean over the epoch's answer tokens; None for epoch 0
    val_loss: float | None
    precision: float | None
    recall: float | None
    sample_f1: float | None  # the paper's "macro F1": per-frame F1 averaged over frames
    mistakes: float | None  # false positives + false negatives per frame, averaged
    predictions: dict[str, list[str]] = field(default_factory=dict)  # frame key → predicted names
    parse_failures: int = 0  # answers that were not a readable list (counted as "nobody")
    seconds: float = 0.0  # training + validation time of the epoch


@dataclass
class TrainingCallbacks:
    """How a run talks to its caller. `should_stop` is asked before every optimizer step."""

    on_step: Callable[[StepMetrics], None] | None = None
    on_epoch: Callable[[EpochMetrics], None] | None = None
    should_stop: Callable[[], bool] | None = None


COMPLETED, CANCELLED = "completed", "cancelled"


@dataclass(frozen=True)
class SFTResult:
    status: str  # COMPLETED or CANCELLED
    adapter_dir: Path | None  # the final adapter (completed runs): ModelSpec.adapter / PeftModel.from_pretrained
    checkpoint_dir: Path  # the latest checkpoint: pass it (or output_dir) as resume_from
    steps_done: int
    total_steps: int
    epochs_completed: int
    history: tuple[EpochMetrics, ...]
    seconds: float

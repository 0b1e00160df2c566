"""Detector fine-tuning (paper §5): LoRA SFT of Qwen2.5-VL on the gold set, with the in-context prompt.

What the web process may import without loading torch: the config, example and result types and
the split. The recipe itself lives in `workers.train.recipe` (torch, transformers, peft); the
command-line entry point for one or several GPUs in `workers.train.run`.
"""

from workers.train.config import (
    CANCELLED,
    COMPLETED,
    EpochMetrics,
    SFTConfig,
    SFTResult,
    StepMetrics,
    TrainExample,
    TrainingCallbacks,
)
from workers.train.metrics import DetectionScores, detection_scores, frame_scores
from workers.train.split import split_gold

__all__ = [
    "CANCELLED",
    "COMPLETED",
    "DetectionScores",
    "EpochMetrics",
    "SFTConfig",
    "SFTResult",
    "StepMetrics",
    "TrainExample",
    "TrainingCallbacks",
    "detection_scores",
    "frame_scores",
    "split_gold",
]

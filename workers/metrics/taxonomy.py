"""The paper's metric taxonomy (§2.2–2.3) as data, so every number the app shows carries its class.

One catalogue for every metric this package computes, importable without torch or scipy: the web
process lists it to label pages and tables, and a result row's metric name is a key of `METRICS`.
"""

from dataclasses import dataclass
from enum import StrEnum


class MetricClass(StrEnum):
    MODEL_FREE_UNIVERSAL = "model-free universal"  # pair + a dataset-wide rule: cheap health check
    MODEL_BASED_UNIVERSAL = "model-based universal"  # a model is the reference: before/after, no labels
    INSTANCE_GROUNDED = "instance-grounded"  # needs a gold label per pair: the SFT target


@dataclass(frozen=True)
class MetricInfo:
    name: str  # the key used in result rows and tables
    label: str
    metric_class: MetricClass
    description: str
    scale: str  # e.g. "0–1", "1–10", "tokens"
    higher_is_better: bool | None  # None: neither (a length is judged against a limit)


_GROUNDED = MetricClass.INSTANCE_GROUNDED
_FREE = MetricClass.MODEL_FREE_UNIVERSAL
_MODEL = MetricClass.MODEL_BASED_UNIVERSAL

METRICS: dict[str, MetricInfo] = {
    info.name: info
    for info in [
        MetricInfo(
            "precision",
            "Precision",
            _GROUNDED,
            "Share of the predicted characters that are in the frame, per frame, averaged.",
            "0–1",
            True,
        ),
        MetricInfo(
            "recall",
            "Recall",
            _GROUNDED,
            "Share of the frame's characters that were predicted, per frame, averaged.",
            "0–1",
            True,
        ),
        MetricInfo(
            "f1",
            "F1 (the paper's macro F1)",
            _GROUNDED,
            "Per-frame F1 of the predicted vs the gold character set, averaged over frames.",
            "0–1",
            True,
        ),
        MetricInfo(
            "mistakes",
            "# mistakes",
            _GROUNDED,
            "False positives + false negatives per frame, averaged.",
            "characters per frame",
            False,
        ),
        MetricInfo(
            "caption_tokens",
            "Caption length",
            _FREE,
            "Length of the caption in tokens of the chosen tokenizer; flagged over the limit.",
            "tokens",
            None,
        ),
        MetricInfo(
            "structure_adherence",
            "Structure adherence",
            _FREE,
            "The caption is a JSON object as written, fits the schema, every key present, required fields filled.",
            "share of captions",
            True,
        ),
        MetricInfo(
            "clip_score",
            "CLIPScore",
            _MODEL,
            "2.5 × max(cosine of the CLIP image and caption embeddings, 0); long captions in chunks.",
            "0–2.5",
            True,
        ),
        MetricInfo("overall", "Overall (judge)", _MODEL, "Mean of the judge's four field scores.", "1–10", True),
        MetricInfo(
            "salient_objects",
            "Salient objects (judge)",
            _MODEL,
            "The judge's score of the salient-objects field against the image.",
            "1–10",
            True,
        ),
        MetricInfo(
            "characters",
            "Characters (judge)",
            _MODEL,
            "The judge's score of the characters field against the image and roster.",
            "1–10",
            True,
        ),
        MetricInfo(
            "background",
            "Background (judge)",
            _MODEL,
            "The judge's score of the background field against the image.",
            "1–10",
            True,
        ),
        MetricInfo(
            "scene", "Scene (judge)", _MODEL, "The judge's score of the scene field against the image.", "1–10", True
        ),
    ]
}

"""The model side of detector SFT: loading with LoRA, vision features, and the answer-token loss."""

from collections.abc import Sequence

import torch
from PIL import Image
from torch import nn
from transformers.modeling_outputs import BaseModelOutputWithPooling

from workers.train.config import SFTConfig
from workers.train.data import IGNORE_INDEX, Batch, ImageRef
from workers.vlm.backends import fit_pixels

# PEFT matches a string of target/exclude modules as a regular expression over module names.
VISION_TOWER_MODULES = r"(.*\.)?visual\..*"


def training_dtype(config: SFTConfig, device: torch.device) -> torch.dtype:
    if config.precision == "bf16":
        return torch.bfloat16
    if config.precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def load_base_model(config: SFTConfig, dtype: torch.dtype):
    """(model, processor) through the same Auto classes as the detector's backend."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(config.base_model)
    model = AutoModelForImageTextToText.from_pretrained(config.base_model, dtype=dtype)
    return model, processor


def lora_config(config: SFTConfig):
    from peft import LoraConfig

    target = config.target_modules if isinstance(config.target_modules, str) else list(config.target_modules)
    return LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules=target,
        exclude_modules=None if config.train_vision else VISION_TOWER_MODULES,
    )


def core_model(model) -> nn.Module:
    """The transformers model under a PEFT wrapper."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


class ImageFeatures:
    """The vision tower's output (merged patch embeddings, one row per image token) for images.

    With the tower frozen an image's features never change, so with `cache` on they are computed
    once per image — one image per call, so a resumed run gets bit-identical features — and kept on
    the CPU, leaving the accelerator's memory to the language model's activations.
    """

    def __init__(
        self,
        model,
        image_processor,
        device: torch.device,
        trainable: bool,
        cache: bool,
        references: set[ImageRef],
    ):
        self.model = model
        self.image_processor = image_processor
        self.device = device
        self.trainable = trainable
        self.cache_enabled = cache and not trainable
        self.references = references  # in every prompt: their pixels are worth keeping between steps
        self._features: dict[ImageRef, torch.Tensor] = {}
        self._reference_pixels: dict[ImageRef, tuple[torch.Tensor, torch.Tensor]] = {}

    def __call__(self, images: Sequence[ImageRef]) -> list[torch.Tensor]:
        if not images:  # e.g. a roster without reference images: the prefix is text only
            return []
        if self.cache_enabled:
            return [self._cached(image) for image in images]
        pixels = [self._pixels(image) for image in images]
        with torch.set_grad_enabled(self.trainable and torch.is_grad_enabled()):
            return self._encode(torch.cat([p for p, _ in pixels]), torch.cat([g for _, g in pixels]))

    def _cached(self, image: ImageRef) -> torch.Tensor:
        if image not in self._features:
            pixel_values, grid = self._pixels(image)
            with torch.no_grad():
                self._features[image] = self._encode(pixel_values, grid)[0].cpu()
        return self._features[image]

    def _pixels(self, image: ImageRef) -> tuple[torch.Tensor, torch.Tensor]:
        if image in self._reference_pixels:
            return self._reference_pixels[image]
        path, max_pixels = image
        with Image.open(path) as opened:
            picture = fit_pixels(opened.convert("RGB"), max_pixels)
        inputs = self.image_processor(images=[picture], return_tensors="pt")
        pixels = (inputs["pixel_values"], inputs["image_grid_thw"])
        if image in self.references and not self.cache_enabled:
            self._reference_pixels[image] = pixels
        return pixels

    def _encode(self, pixel_values: torch.Tensor, grids: torch.Tensor) -> list[torch.Tensor]:
        outputs = core_model(self.model).model.get_image_features(pixel_values.to(self.device), grids.to(self.device))
        return list(outputs.pooler_output)


def _image_outputs(features: list[torch.Tensor]) -> dict | None:
    """Precomputed vision features in the form the model's forward takes instead of pixels."""
    return {"image": BaseModelOutputWithPooling(pooler_output=tuple(features))} if features else None


class AnswerLoss(nn.Module):
    """Summed cross-entropy over a batch's answer tokens.

    This is the module DDP wraps, so the shared prefix's forward and every suffix's run inside one
    `forward`. With a prefix, its KV cache is computed once (batch 1, with gradients), repeated for
    the rows, and the suffixes attend to it: the same sums as running every full prompt. Logits are
    computed only where an answer token is predicted: the vocabulary projection of the prompt
    positions would be thrown away by the loss anyway.
    """

    def __init__(self, model, features: ImageFeatures):
        super().__init__()
        self.model = model
        self.features = features

    def forward(self, batch: Batch) -> torch.Tensor:
        rows = batch.input_ids.shape[0]
        cache = None
        if batch.prefix_ids is not None:
            prefix = self.model(
                input_ids=batch.prefix_ids,
                attention_mask=batch.attention_mask[:1, : batch.prefix_ids.shape[1]],
                position_ids=batch.prefix_position_ids,
                mm_encoder_outputs=_image_outputs(self.features(batch.prefix_images)),
                use_cache=True,
                logits_to_keep=1,
            )
            cache = prefix.cache
            cache.batch_repeat_interleave(rows)
        predicts_answer = torch.zeros_like(batch.labels, dtype=torch.bool)
        predicts_answer[:, :-1] = batch.labels[:, 1:] != IGNORE_INDEX
        outputs = self.model(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            position_ids=batch.position_ids,
            mm_encoder_outputs=_image_outputs(self.features(batch.images)),
            cache=cache,
            use_cache=cache is not None,
            logits_to_keep=predicts_answer,
        )
        targets = batch.labels[:, 1:][predicts_answer[:, :-1]]
        return nn.functional.cross_entropy(outputs.logits.float(), targets, reduction="sum")

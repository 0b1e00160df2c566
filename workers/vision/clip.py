"""CLIP image embeddings with open_clip: batched, fast JPEG decode, one code path for every model.

The same `load_clip` call takes `pretrained="openai"` for the paper's ViT-B/32 and a local
checkpoint file for the offline `tiny` profile (a toy config registered with open_clip).

Images are decoded and preprocessed by a pool of threads in this process, a batch or so ahead of
the model: Pillow's JPEG decode and resize release the GIL, so the threads decode in parallel
with each other and with the model's forward pass. Threads, not processes, because the embed job
runs in Celery's prefork children, which are daemonic and may not start processes of their own.
"""

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

LOCAL_DIR = "local-dir:"  # open_clip's prefix for a model folder (config + weights), e.g. the demo's CLIP


@dataclass(frozen=True)
class ClipModelSpec:
    model_name: str = "ViT-B-32"
    pretrained: str | None = "openai"  # an open_clip tag, or a local checkpoint file
    config_dir: Path | None = None  # extra open_clip model configs to register (the tiny profile)

    @property
    def key(self) -> str:
        """What identifies the vector space: vectors of different keys never mix."""
        if self.model_name.startswith(LOCAL_DIR) and not self.pretrained:
            return self.model_name  # an open_clip folder holds its weights: the folder is the model
        return f"{self.model_name}:{Path(self.pretrained).name if self.pretrained else 'random'}"


@dataclass(frozen=True)
class EmbeddingConfig:
    batch_size: int = 64
    num_workers: int = 2  # decode threads (works in a daemonic Celery child); 0 decodes inline, one at a time
    device: str = "auto"  # "auto" → cuda when available
    draft_decode: bool = True  # let libjpeg scale down while decoding (2–8× less work for 1080p)
    # CPU matmuls in bfloat16 where the processor has native bf16 (AVX512-BF16/AMX): ~1.3× faster,
    # cosine to fp32 > 0.9999. "fp32" keeps exact float32 everywhere.
    cpu_precision: str = "auto"


@dataclass
class EmbeddingResult:
    asset_ids: list[int]
    vectors: np.ndarray  # (N, D) float32, L2-normalised
    failed: dict[int, str] = field(default_factory=dict)
    seconds: float = 0.0
    device: str = "cpu"
    decode_threads: int = 0  # how many distinct threads decoded images (0: none decoded)

    @property
    def images_per_second(self) -> float:
        return len(self.asset_ids) / self.seconds if self.seconds else 0.0


def resolve_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def cpu_bf16_supported() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _autocast(device: torch.device, config: "EmbeddingConfig"):
    import contextlib

    if device.type == "cpu" and config.cpu_precision == "auto" and cpu_bf16_supported():
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def load_clip(spec: ClipModelSpec, device: torch.device):
    """(model, preprocess) through open_clip's ordinary factory."""
    import open_clip

    if spec.config_dir is not None:
        open_clip.add_model_config(str(spec.config_dir))
    precision = "fp32"
    if device.type == "cuda":
        precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    model, _, preprocess = open_clip.create_model_and_transforms(
        spec.model_name, pretrained=spec.pretrained, precision=precision, device=device
    )
    model.eval()
    return model, preprocess


def open_for_embedding(path: Path, target_side: int, draft: bool) -> Image.Image:
    image = Image.open(path)
    if draft and image.format == "JPEG":
        # Decode straight to ≥ target_side (DCT scaling): far less work than full size + resize.
        image.draft("RGB", (target_side, target_side))
    return image.convert("RGB")


class _ImageFiles:
    def __init__(self, items: Sequence[tuple[int, Path]], preprocess, target_side: int, draft: bool):
        self.items, self.preprocess, self.target_side, self.draft = list(items), preprocess, target_side, draft
        self.decoder_threads: set[int] = set()  # idents of the threads that decoded (set.add is atomic)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        self.decoder_threads.add(threading.get_ident())
        asset_id, path = self.items[index]
        try:
            image = open_for_embedding(Path(path), self.target_side, self.draft)
            return asset_id, self.preprocess(image), ""
        except Exception as exc:  # noqa: BLE001 — reported per image, the batch goes on
            return asset_id, None, f"{type(exc).__name__}: {exc}"


def _collate(batch):
    good = [(asset_id, tensor) for asset_id, tensor, error in batch if tensor is not None]
    failed = {asset_id: error for asset_id, tensor, error in batch if tensor is None}
    ids = [asset_id for asset_id, _ in good]
    tensors = torch.stack([tensor for _, tensor in good]) if good else None
    return ids, tensors, failed


def decoded_batches(dataset: _ImageFiles, batch_size: int, threads: int) -> Iterator[tuple]:
    """(ids, tensors, failed) per batch, in the items' order. With `threads` ≥ 1, a pool of that many
    threads decodes each image in parallel, at most one batch ahead of the batch being returned:
    the next batch is decoded while the caller runs the model on this one, and no more than two
    batches of tensors are held at any time (memory stays flat however many images there are)."""
    total = len(dataset)
    if threads <= 0:
        for start in range(0, total, batch_size):
            yield _collate([dataset[index] for index in range(start, min(total, start + batch_size))])
        return
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="embed-decode") as pool:
        pending: deque = deque()
        submitted = 0
        try:
            for start in range(0, total, batch_size):
                stop = min(total, start + batch_size)
                while submitted < min(total, stop + batch_size):  # this batch and the next one
                    pending.append(pool.submit(dataset.__getitem__, submitted))
                    submitted += 1
                yield _collate([pending.popleft().result() for _ in range(stop - start)])
        finally:
            for future in pending:  # the caller stopped early (an error): drop what is queued
                future.cancel()


def _image_side(preprocess) -> int:
    for transform in getattr(preprocess, "transforms", []):
        size = getattr(transform, "size", None)
        if size:
            return int(size if isinstance(size, int) else max(size))
    return 224


def embed_images(
    spec: ClipModelSpec,
    items: Sequence[tuple[int, Path]],
    config: EmbeddingConfig = EmbeddingConfig(),
    on_progress: Callable[[int, int], None] | None = None,
    loaded=None,
) -> EmbeddingResult:
    """Embed (asset_id, image path) pairs. Unreadable images are reported, not fatal."""
    started = time.perf_counter()
    device = resolve_device(config.device)
    model, preprocess = loaded or load_clip(spec, device)
    dataset = _ImageFiles(items, preprocess, _image_side(preprocess), config.draft_decode)
    dtype = next(model.parameters()).dtype
    ids: list[int] = []
    chunks: list[np.ndarray] = []
    failed: dict[int, str] = {}
    done = 0
    with torch.inference_mode(), _autocast(device, config):
        for batch_ids, tensors, batch_failed in decoded_batches(dataset, config.batch_size, config.num_workers):
            failed.update(batch_failed)
            if tensors is not None:
                if device.type == "cuda":
                    tensors = tensors.pin_memory()  # lets the copy below overlap with the GPU
                features = model.encode_image(tensors.to(device, dtype=dtype, non_blocking=True))
                features = torch.nn.functional.normalize(features.float(), dim=-1)
                chunks.append(features.cpu().numpy())
                ids.extend(batch_ids)
            done += len(batch_ids) + len(batch_failed)
            if on_progress is not None:
                on_progress(done, len(dataset))
    dim = int(model.visual.output_dim) if hasattr(model.visual, "output_dim") else (chunks[0].shape[1] if chunks else 0)
    vectors = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros((0, dim), dtype=np.float32)
    return EmbeddingResult(
        asset_ids=ids,
        vectors=vectors,
        failed=failed,
        seconds=time.perf_counter() - started,
        device=str(device),
        decode_threads=len(dataset.decoder_threads),
    )

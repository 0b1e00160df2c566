"""CLIPScore (Hessel et al., 2021), a model-based universal metric: how well a caption matches its
image in a CLIP space, with no reference caption.

    CLIPScore(c, v) = w · max(cos(E_text(c), E_image(v)), 0),   w = 2.5

Captions longer than the text tower's context (77 tokens for ViT-B/32) are not truncated — that
would score only the first sentence of a structured caption. The caption is split at word
boundaries into chunks that fit (two slots kept for the start/end tokens), each chunk is embedded,
and the L2-normalised chunk embeddings are averaged weighted by their token counts, renormalised
and compared with the image. The row says how many chunks it took (`chunked` when more than one),
so the app can show which scores come from the long-caption rule.

Needs an open_clip `SimpleTokenizer` (what `open_clip.get_tokenizer` returns for OpenAI-style CLIP
models, the tiny profile included): its `encode` gives the token ids that chunks are cut from.
"""

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from workers.vision.clip import ClipModelSpec, EmbeddingConfig, embed_images, load_clip

CLIPSCORE_WEIGHT = 2.5


@dataclass(frozen=True)
class ClipScoreConfig:
    weight: float = CLIPSCORE_WEIGHT
    batch_size: int = 64  # text chunks per forward pass


@dataclass(frozen=True)
class ClipScoreRow:
    key: Hashable
    clip_score: float
    cosine: float  # before clipping at 0 and weighting: random or weak models often sit below 0
    tokens: int  # caption tokens, start/end tokens excluded
    chunks: int

    @property
    def chunked(self) -> bool:
        return self.chunks > 1


@dataclass
class ClipScoreReport:
    rows: list[ClipScoreRow]
    failed_images: dict[Hashable, str] = field(default_factory=dict)  # key → why it was not scored
    missing_captions: list[Hashable] = field(default_factory=list)

    def summary(self) -> dict:
        scores = np.array([row.clip_score for row in self.rows], dtype=np.float64)
        return {
            "n": len(self.rows),
            "mean": float(scores.mean()) if len(scores) else None,
            "std": float(scores.std(ddof=1)) if len(scores) > 1 else None,
            "chunked": sum(row.chunked for row in self.rows),
            "failed_images": len(self.failed_images),
            "missing_captions": len(self.missing_captions),
        }

    def to_dict(self) -> dict:
        rows = [{**asdict(row), "chunked": row.chunked} for row in self.rows]
        return {"summary": self.summary(), "rows": rows, "failed_images": dict(self.failed_images)}


def load_clip_scorer(spec: ClipModelSpec, device):
    """(model, preprocess, tokenizer) for a CLIP spec: the same loading path as the embedding stage."""
    import open_clip

    model, preprocess = load_clip(spec, device)
    return model, preprocess, open_clip.get_tokenizer(spec.model_name)


def split_into_chunks(text: str, encode: Callable[[str], list[int]], capacity: int) -> list[list[int]]:
    """Token ids of `text` in chunks of at most `capacity`, cut between words where possible."""
    ids = encode(text)
    if len(ids) <= capacity:
        return [ids]
    chunks: list[list[int]] = []
    current: list[int] = []
    for word in text.split():
        word_ids = encode(word)
        while len(word_ids) > capacity:  # one "word" longer than a chunk: a URL, a run of symbols
            if current:
                chunks.append(current)
                current = []
            chunks.append(word_ids[:capacity])
            word_ids = word_ids[capacity:]
        if len(current) + len(word_ids) > capacity:
            chunks.append(current)
            current = []
        current = current + word_ids
    if current:
        chunks.append(current)
    return chunks


def _tokenizer_parts(tokenizer) -> tuple[Callable[[str], list[int]], int, int]:
    try:
        return tokenizer.encode, tokenizer.sot_token_id, tokenizer.eot_token_id
    except AttributeError:
        raise TypeError(
            f"CLIPScore needs an open_clip SimpleTokenizer (encode, sot/eot ids); got {type(tokenizer).__name__}."
        ) from None


def caption_embeddings(model, tokenizer, captions: Sequence[str], config: ClipScoreConfig = ClipScoreConfig()):
    """(embeddings (N, D) float32 L2-normalised, chunks per caption, tokens per caption)."""
    import torch

    encode, start_token, end_token = _tokenizer_parts(tokenizer)
    context_length = int(getattr(model, "context_length", None) or tokenizer.context_length)
    capacity = context_length - 2  # the start and end tokens
    owners: list[int] = []
    chunk_ids: list[list[int]] = []
    chunk_counts: list[int] = []
    token_counts: list[int] = []
    for index, caption in enumerate(captions):
        chunks = split_into_chunks(caption, encode, capacity)
        owners.extend([index] * len(chunks))
        chunk_ids.extend(chunks)
        chunk_counts.append(len(chunks))
        token_counts.append(sum(len(chunk) for chunk in chunks))
    device = next(model.parameters()).device
    vectors = []
    with torch.inference_mode():
        for start in range(0, len(chunk_ids), config.batch_size):
            batch = chunk_ids[start : start + config.batch_size]
            # Laid out exactly as SimpleTokenizer.__call__ does: start, ids, end, zero padding.
            tokens = torch.zeros(len(batch), context_length, dtype=torch.long)
            for row, ids in enumerate(batch):
                tokens[row, : len(ids) + 2] = torch.tensor([start_token, *ids, end_token])
            features = model.encode_text(tokens.to(device)).float()
            vectors.append(torch.nn.functional.normalize(features, dim=-1).cpu().numpy())
    dim = vectors[0].shape[1] if vectors else 0
    chunk_vectors = np.concatenate(vectors) if vectors else np.zeros((0, dim), dtype=np.float32)
    # An empty chunk (an empty caption) still carries the start/end tokens: weight it 1, not 0.
    weights = np.array([max(len(ids), 1) for ids in chunk_ids], dtype=np.float64)
    summed = np.zeros((len(captions), dim), dtype=np.float64)
    np.add.at(summed, np.array(owners, dtype=np.int64), chunk_vectors * weights[:, None])
    norms = np.linalg.norm(summed, axis=1, keepdims=True)
    embeddings = (summed / np.where(norms > 0, norms, 1.0)).astype(np.float32)
    return embeddings, chunk_counts, token_counts


def clip_scores(
    model,
    tokenizer,
    image_vectors: np.ndarray,
    captions: Sequence[str],
    keys: Sequence[Hashable] | None = None,
    config: ClipScoreConfig = ClipScoreConfig(),
) -> list[ClipScoreRow]:
    """CLIPScore of each (image vector, caption) pair. `image_vectors`: (N, D) from the same CLIP
    model (e.g. the embedding stage's vectors); they are L2-normalised here whatever their norm."""
    image_vectors = np.asarray(image_vectors, dtype=np.float32)
    if len(image_vectors) != len(captions):
        raise ValueError(f"{len(image_vectors)} image vectors for {len(captions)} captions.")
    keys = list(range(len(captions))) if keys is None else list(keys)
    if len(keys) != len(captions):
        raise ValueError(f"{len(keys)} keys for {len(captions)} captions.")
    if not captions:
        return []
    text, chunk_counts, token_counts = caption_embeddings(model, tokenizer, captions, config)
    if text.shape[1] != image_vectors.shape[1]:
        raise ValueError(
            f"Image vectors have {image_vectors.shape[1]} dimensions, the text tower {text.shape[1]}: "
            "they come from different CLIP models."
        )
    norms = np.linalg.norm(image_vectors, axis=1, keepdims=True)
    images = image_vectors / np.where(norms > 0, norms, 1.0)
    cosines = np.einsum("nd,nd->n", images.astype(np.float64), text.astype(np.float64))
    return [
        ClipScoreRow(
            key=key,
            clip_score=config.weight * max(float(cosine), 0.0),
            cosine=float(cosine),
            tokens=tokens,
            chunks=chunks,
        )
        for key, cosine, tokens, chunks in zip(keys, cosines, token_counts, chunk_counts, strict=True)
    ]


def clip_scores_for_images(
    model,
    preprocess,
    tokenizer,
    images: Sequence[tuple[Hashable, Path]],
    captions: Mapping[Hashable, str],
    config: ClipScoreConfig = ClipScoreConfig(),
    embedding: EmbeddingConfig = EmbeddingConfig(),  # decode threads: fine in a prefork child too
) -> ClipScoreReport:
    """CLIPScore from image files: (key, path) pairs, captions by key. Unreadable images and
    images without a caption are reported, not fatal."""
    return clip_scores_for_caption_sets(model, preprocess, tokenizer, images, {"": captions}, config, embedding)[""]


def clip_scores_for_caption_sets(
    model,
    preprocess,
    tokenizer,
    images: Sequence[tuple[Hashable, Path]],
    caption_sets: Mapping[Hashable, Mapping[Hashable, str]],
    config: ClipScoreConfig = ClipScoreConfig(),
    embedding: EmbeddingConfig = EmbeddingConfig(),
) -> dict[Hashable, ClipScoreReport]:
    """CLIPScore of several sets of captions of the same images (e.g. each pipeline's captions of
    an eval set's frames), each image embedded once: a report per set, by the set's name."""
    captioned = [(key, path) for key, path in images if any(key in captions for captions in caption_sets.values())]
    # `loaded` makes embed_images use this model: its spec argument is then unused.
    embedded = embed_images(ClipModelSpec(), captioned, embedding, loaded=(model, preprocess))
    row_of = {key: row for row, key in enumerate(embedded.asset_ids)}
    reports = {}
    for name, captions in caption_sets.items():
        keys = [key for key in embedded.asset_ids if key in captions]
        vectors = embedded.vectors[[row_of[key] for key in keys]]
        reports[name] = ClipScoreReport(
            rows=clip_scores(model, tokenizer, vectors, [captions[key] for key in keys], keys, config),
            failed_images={key: why for key, why in embedded.failed.items() if key in captions},
            missing_captions=[key for key, _ in images if key not in captions],
        )
    return reports

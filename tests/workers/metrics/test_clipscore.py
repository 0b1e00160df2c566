"""CLIPScore on the tiny open_clip model: matches a direct computation with open_clip's own
tokenizer, batching changes nothing, long captions are chunked rather than truncated."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.assertions import assert_varied_rows
from workers.metrics import clipscore
from workers.metrics.clipscore import (
    ClipScoreConfig,
    caption_embeddings,
    clip_scores,
    clip_scores_for_caption_sets,
    clip_scores_for_images,
    load_clip_scorer,
    split_into_chunks,
)
from workers.vision.clip import EmbeddingConfig, embed_images
from workers.vision.tiny import build_tiny_clip


@pytest.fixture(scope="module")
def scorer(tmp_path_factory):
    spec = build_tiny_clip(tmp_path_factory.mktemp("models") / "clip")
    return load_clip_scorer(spec, torch.device("cpu"))


@pytest.fixture(scope="module")
def image_vectors(scorer, frames):
    model, preprocess, _ = scorer
    items = list(enumerate(frames))
    vectors = embed_images(None, items, EmbeddingConfig(num_workers=0), loaded=(model, preprocess)).vectors
    assert_varied_rows(vectors)  # four frames, four different vectors: the comparisons below can fail
    return vectors


def reference_text_vectors(model, tokenizer, texts: list[str]) -> np.ndarray:
    with torch.inference_mode():
        return model.encode_text(tokenizer(texts), normalize=True).float().numpy()


CAPTIONS = ["a girl in a red coat", "a dark forest at night", "", "two sprites next to a lantern"]


def test_short_captions_score_as_open_clip_computes_them(scorer, image_vectors):
    model, _, tokenizer = scorer
    rows = clip_scores(model, tokenizer, image_vectors, CAPTIONS, keys=["a", "b", "c", "d"])
    text = reference_text_vectors(model, tokenizer, CAPTIONS)
    cosines = np.sum(image_vectors * text, axis=1)
    assert np.ptp(cosines) > 1e-3  # the captions score differently
    assert [row.key for row in rows] == ["a", "b", "c", "d"]
    np.testing.assert_allclose([row.cosine for row in rows], cosines, atol=1e-5)
    np.testing.assert_allclose([row.clip_score for row in rows], 2.5 * np.maximum(cosines, 0), atol=1e-5)
    assert all(row.chunks == 1 and not row.chunked for row in rows)
    assert [row.tokens for row in rows] == [len(tokenizer.encode(caption)) for caption in CAPTIONS]


def test_batch_size_changes_nothing_and_scores_follow_the_weight(scorer, image_vectors):
    model, _, tokenizer = scorer
    one = clip_scores(model, tokenizer, image_vectors, CAPTIONS, config=ClipScoreConfig(batch_size=1))
    many = clip_scores(model, tokenizer, image_vectors, CAPTIONS, config=ClipScoreConfig(batch_size=64, weight=1.0))
    assert np.ptp([row.cosine for row in one]) > 1e-3
    np.testing.assert_allclose([row.cosine for row in one], [row.cosine for row in many], atol=1e-5)
    assert any(row.cosine > 0 for row in many)  # else the weight would multiply zeros only
    assert all(row.clip_score == pytest.approx(max(row.cosine, 0.0)) for row in many)


def test_a_caption_longer_than_the_context_is_chunked_and_its_chunk_embeddings_averaged(scorer, image_vectors):
    model, _, tokenizer = scorer
    assert model.context_length == 77 and len(tokenizer.encode("cat")) == 1 == len(tokenizer.encode("dog"))
    long_caption = " ".join(["cat"] * 100 + ["dog"] * 100)  # 200 tokens; 75 fit beside start/end
    rows = clip_scores(model, tokenizer, image_vectors[:2], [long_caption, "a cat"])
    assert rows[0].chunked and rows[0].chunks == 3 and rows[0].tokens == 200
    assert not rows[1].chunked

    chunk_texts = [" ".join(["cat"] * 75), " ".join(["cat"] * 25 + ["dog"] * 50), " ".join(["dog"] * 50)]
    weights = np.array([75, 75, 50], dtype=np.float64)
    mean = (reference_text_vectors(model, tokenizer, chunk_texts) * weights[:, None]).sum(axis=0)
    mean /= np.linalg.norm(mean)
    assert rows[0].cosine == pytest.approx(float(image_vectors[0] @ mean), abs=1e-5)
    # Truncation would have scored only the first 75 "cat"s: the chunked score differs from it.
    truncated = reference_text_vectors(model, tokenizer, [long_caption])[0]
    assert abs(rows[0].cosine - float(image_vectors[0] @ truncated)) > 1e-4


def test_a_single_word_longer_than_the_context_is_split_too(scorer, image_vectors):
    model, _, tokenizer = scorer
    blob = "x".join(str(number) for number in range(60))  # one "word", well over 75 tokens
    embeddings, chunks, tokens = caption_embeddings(model, tokenizer, [f"a {blob} b"])
    assert chunks[0] > 1 and tokens[0] == len(tokenizer.encode(f"a {blob} b"))
    assert np.linalg.norm(embeddings[0]) == pytest.approx(1.0, abs=1e-5)


def _char_ids(text: str) -> list[int]:
    return [ord(char) for char in text if not char.isspace()]


@settings(max_examples=200, deadline=None)
@given(
    words=st.lists(st.text(alphabet="abcdefgh", min_size=1, max_size=12), max_size=30),
    capacity=st.integers(min_value=1, max_value=15),
)
def test_chunks_fit_keep_every_token_in_order_and_cut_words_only_when_they_are_too_long(words, capacity):
    text = " ".join(words)
    chunks = split_into_chunks(text, _char_ids, capacity)
    assert [token for chunk in chunks for token in chunk] == _char_ids(text)
    assert all(len(chunk) <= capacity for chunk in chunks)
    chunk_of_token = [index for index, chunk in enumerate(chunks) for _ in chunk]
    word_start = 0
    for word in words:
        if len(word) <= capacity:  # a word that fits in a chunk is never cut
            assert chunk_of_token[word_start] == chunk_of_token[word_start + len(word) - 1]
        word_start += len(word)


def test_image_files_unreadable_or_uncaptioned_are_reported_and_the_rest_scored(
    scorer, frames, image_vectors, tmp_path
):
    model, preprocess, tokenizer = scorer
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff not really a jpeg")
    items = [(0, frames[0]), (1, frames[1]), (2, broken), (3, frames[3])]
    captions = {0: CAPTIONS[0], 1: CAPTIONS[1], 2: "whatever"}
    report = clip_scores_for_images(model, preprocess, tokenizer, items, captions)
    assert [row.key for row in report.rows] == [0, 1]
    assert list(report.failed_images) == [2] and report.missing_captions == [3]
    direct = clip_scores(model, tokenizer, image_vectors[:2], CAPTIONS[:2])
    assert direct[0].cosine != pytest.approx(direct[1].cosine, abs=1e-4)
    np.testing.assert_allclose([row.cosine for row in report.rows], [row.cosine for row in direct], atol=1e-5)
    summary = report.summary()
    assert summary["n"] == 2 and summary["failed_images"] == 1 and summary["missing_captions"] == 1


def test_several_caption_sets_of_the_same_images_score_as_each_set_alone(scorer, frames, monkeypatch):
    model, preprocess, tokenizer = scorer
    items = [(key, frames[key]) for key in range(4)]
    sets = {"first": {0: CAPTIONS[0], 1: CAPTIONS[1], 3: CAPTIONS[3]}, "second": {1: CAPTIONS[2], 2: CAPTIONS[0]}}
    alone = {name: clip_scores_for_images(model, preprocess, tokenizer, items, sets[name]) for name in sets}
    embedded_images = []
    real_embed = clipscore.embed_images

    def counting_embed(spec, images, *args, **kwargs):
        embedded_images.append(len(images))
        return real_embed(spec, images, *args, **kwargs)

    monkeypatch.setattr(clipscore, "embed_images", counting_embed)
    together = clip_scores_for_caption_sets(model, preprocess, tokenizer, items, sets)
    assert embedded_images == [4]  # every image embedded once for both sets
    for name in sets:
        cosines = [row.cosine for row in together[name].rows]
        assert [row.key for row in together[name].rows] == sorted(sets[name]) and len(set(cosines)) == len(cosines)
        np.testing.assert_allclose(cosines, [row.cosine for row in alone[name].rows], atol=1e-5)
        assert together[name].missing_captions == alone[name].missing_captions


def test_mismatched_inputs_are_refused_with_the_reason(scorer, image_vectors):
    model, _, tokenizer = scorer
    with pytest.raises(ValueError, match="4 image vectors for 1 captions"):
        clip_scores(model, tokenizer, image_vectors, ["a cat"])
    with pytest.raises(ValueError, match="different CLIP models"):
        clip_scores(model, tokenizer, np.ones((1, 512), dtype=np.float32), ["a cat"])
    with pytest.raises(TypeError, match="SimpleTokenizer"):
        clip_scores(model, str.split, image_vectors[:1], ["a cat"])

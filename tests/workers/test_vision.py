import numpy as np
import pytest
from PIL import Image

from tests.assertions import assert_varied_rows
from tests.daemonic import in_daemonic_child
from workers.vision.clip import ClipModelSpec, EmbeddingConfig, embed_images, load_clip, open_for_embedding
from workers.vision.profiles import clip_spec
from workers.vision.tiny import TINY_CLIP_NAME, build_tiny_clip


@pytest.fixture(scope="module")
def tiny_spec(tmp_path_factory) -> ClipModelSpec:
    return build_tiny_clip(tmp_path_factory.mktemp("models") / "clip")


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    folder = tmp_path_factory.mktemp("frames")
    paths = []
    for index in range(12):
        path = folder / f"{index}.jpg"
        image = Image.new("RGB", (640, 360), (index * 40, 200 - index * 30, 90))
        image.paste((255, 255, 255), (index * 45, 50, index * 45 + 100, 200))
        image.save(path, quality=90)
        paths.append((index + 1, path))
    return paths


def test_tiny_profile_loads_through_open_clips_ordinary_checkpoint_path(tiny_spec, tmp_path):
    assert tiny_spec.model_name == TINY_CLIP_NAME and tiny_spec.pretrained.endswith(".pt")
    model, preprocess = load_clip(tiny_spec, __import__("torch").device("cpu"))
    assert model.visual.output_dim == 64
    # same factory call a real checkpoint takes; a second build reuses the same file
    assert clip_spec("tiny", tmp_path).pretrained.endswith(f"{TINY_CLIP_NAME}.pt")
    assert build_tiny_clip(tmp_path / "tiny" / "clip").pretrained == clip_spec("tiny", tmp_path).pretrained


def test_paper_profile_means_vit_b_32_openai():
    spec = clip_spec("paper", models_dir=None)
    assert (spec.model_name, spec.pretrained) == ("ViT-B-32", "openai")
    with pytest.raises(ValueError, match="Unknown model profile"):
        clip_spec("huge", models_dir=None)


def test_embeddings_are_normalised_and_batching_changes_nothing(tiny_spec, frames):
    batched = embed_images(tiny_spec, frames, EmbeddingConfig(batch_size=4, num_workers=0))
    single = embed_images(tiny_spec, frames, EmbeddingConfig(batch_size=1, num_workers=0))
    assert batched.asset_ids == single.asset_ids == [asset_id for asset_id, _ in frames]
    assert batched.vectors.shape == (12, 64)
    assert_varied_rows(batched.vectors)
    np.testing.assert_allclose(np.linalg.norm(batched.vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(batched.vectors, single.vectors, atol=1e-5)


def embed_summary(spec, frames, config):
    result = embed_images(spec, frames, config)
    return result.asset_ids, result.vectors, result.decode_threads


def test_decode_threads_in_a_daemonic_process_give_the_sequential_vectors(tiny_spec, frames):
    """A Celery prefork child is daemonic: decoding there must still be parallel (threads)."""
    ids, vectors, threads = in_daemonic_child(
        "tests.workers.test_vision.embed_summary", tiny_spec, frames, EmbeddingConfig(batch_size=5, num_workers=3)
    )
    sequential = embed_images(tiny_spec, frames, EmbeddingConfig(batch_size=5, num_workers=0))
    assert sequential.decode_threads == 1 and threads > 1
    assert ids == sequential.asset_ids == [asset_id for asset_id, _ in frames]  # order kept
    assert_varied_rows(sequential.vectors)
    np.testing.assert_allclose(vectors, sequential.vectors, atol=1e-5)


def test_decode_threads_keep_at_most_two_batches_in_memory(tiny_spec, frames, monkeypatch):
    from workers.vision import clip

    decoded, embedded = [], []
    getitem = clip._ImageFiles.__getitem__
    monkeypatch.setattr(
        clip._ImageFiles, "__getitem__", lambda self, index: decoded.append(index) or getitem(self, index)
    )
    batches = clip.decoded_batches(
        clip._ImageFiles(frames, lambda image: __import__("torch").zeros(1), 224, True), batch_size=3, threads=2
    )
    for ids, _, _ in batches:
        embedded.extend(ids)
        # decoding runs ahead of what was handed out by at most one batch (3 images)
        assert len(embedded) <= len(decoded) <= len(embedded) + 3
    assert embedded == [asset_id for asset_id, _ in frames] and sorted(decoded) == list(range(12))


def test_unreadable_images_are_reported_and_the_rest_embedded(tiny_spec, frames, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff not really")
    for workers in (0, 2):
        result = embed_images(tiny_spec, [*frames[:2], (99, broken), frames[2]], EmbeddingConfig(num_workers=workers))
        assert result.asset_ids == [1, 2, 3] and list(result.failed) == [99] and "Error" in result.failed[99]
        assert result.vectors.shape == (3, 64)


def test_draft_decode_scales_jpegs_down_while_decoding(frames):
    path = frames[0][1]
    full = Image.open(path).convert("RGB")
    draft = open_for_embedding(path, target_side=160, draft=True)
    assert draft.size[0] < full.size[0] and min(draft.size) >= 160


def test_draft_decode_changes_pixels_but_not_the_embedding_beyond_tolerance(tiny_spec, tmp_path):
    from PIL import ImageDraw

    items = []
    for index in range(4):
        image = Image.new("RGB", (1280, 720), (30 + index * 50, 90, 160))
        ImageDraw.Draw(image).ellipse((index * 200, 100, index * 200 + 500, 600), fill=(240, 200 - index * 40, 40))
        image.save(tmp_path / f"{index}.jpg", quality=90)
        items.append((index, tmp_path / f"{index}.jpg"))
    draft = embed_images(tiny_spec, items, EmbeddingConfig(num_workers=2, draft_decode=True))
    exact = embed_images(tiny_spec, items, EmbeddingConfig(num_workers=2, draft_decode=False))
    assert_varied_rows(exact.vectors)
    assert not np.array_equal(draft.vectors, exact.vectors)  # libjpeg really scaled while decoding
    assert np.sum(draft.vectors * exact.vectors, axis=1).min() > 0.999

import numpy as np
import pytest
from PIL import Image

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
    for index in range(6):
        path = folder / f"{index}.jpg"
        image = Image.new("RGB", (640, 360), (index * 40, 200 - index * 30, 90))
        image.paste((255, 255, 255), (index * 60, 50, index * 60 + 100, 200))
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
    assert batched.asset_ids == [asset_id for asset_id, _ in frames]
    assert batched.vectors.shape == (6, 64)
    np.testing.assert_allclose(np.linalg.norm(batched.vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(batched.vectors, single.vectors, atol=1e-5)


def test_decoding_in_worker_processes_gives_the_same_vectors(tiny_spec, frames):
    inline = embed_images(tiny_spec, frames, EmbeddingConfig(batch_size=3, num_workers=0))
    parallel = embed_images(tiny_spec, frames, EmbeddingConfig(batch_size=3, num_workers=2))
    np.testing.assert_allclose(inline.vectors, parallel.vectors, atol=1e-5)


def test_unreadable_images_are_reported_and_the_rest_embedded(tiny_spec, frames, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff not really")
    result = embed_images(tiny_spec, [*frames[:2], (99, broken)], EmbeddingConfig(num_workers=0))
    assert result.asset_ids == [1, 2] and set(result.failed) == {99}


def test_draft_decode_scales_jpegs_down_while_decoding(frames):
    path = frames[0][1]
    full = Image.open(path).convert("RGB")
    draft = open_for_embedding(path, target_side=160, draft=True)
    assert draft.size[0] < full.size[0] and min(draft.size) >= 160

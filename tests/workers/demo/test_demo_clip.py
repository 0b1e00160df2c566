"""The demo world's CLIP: trained once on another seed of the world, loaded through the ordinary
open_clip path, and — scored on frames of the demo's own seed — it has learned the world."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from workers.demo import DemoWorldConfig, plan_demo_world, render_shot_frame
from workers.demo.clip import ClipTraining, caption_texts, train_demo_clip
from workers.demo.script import shot_caption
from workers.demo.training import MARKER, TRAINING_SEED_OFFSET
from workers.metrics.clipscore import clip_scores_for_images, load_clip_scorer
from workers.vision.clip import EmbeddingConfig, embed_images, load_clip

WORLD_SEED = 7
# A few seconds on CPU: enough shots and steps to learn the places, the characters barely.
TINY = ClipTraining(world_seed=WORLD_SEED, seconds=120, frames_per_shot=2, epochs=10, batch_size=32)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict:
    """The trained CLIP and the same CLIP untrained (no epochs), written the same way."""
    root = tmp_path_factory.mktemp("demo-clip")
    return {
        "trained": train_demo_clip(root / "trained", TINY),
        "untrained": train_demo_clip(root / "untrained", replace(TINY, epochs=0)),
    }


@pytest.fixture(scope="module")
def demo_frames(tmp_path_factory) -> tuple[list, list[tuple[int, Path]]]:
    """Frames of the demo's own world (its seed, its frame size), which the CLIP never saw."""
    world = DemoWorldConfig(seconds=80, seed=WORLD_SEED)
    folder = tmp_path_factory.mktemp("demo-frames")
    plans = plan_demo_world(world)
    items = []
    for index, plan in enumerate(plans):
        path = folder / f"{index:03d}.jpg"
        render_shot_frame(plan, world, step=1).save(path, quality=90)
        items.append((index, path))
    return list(plans), items


def _vectors(spec, items) -> np.ndarray:
    vectors = embed_images(spec, items, EmbeddingConfig(num_workers=0)).vectors
    assert vectors.shape[0] == len(items) and np.isfinite(vectors).all()
    assert vectors.std(axis=0).mean() > 1e-3  # the frames' vectors differ from one another
    return vectors


def test_the_clip_is_trained_once_and_retrained_when_its_settings_change(tmp_path, monkeypatch):
    config = ClipTraining(world_seed=3, seconds=16, frames_per_shot=1, epochs=1, batch_size=8)
    steps = []
    train_demo_clip(tmp_path, config, lambda done, total, what: steps.append((done, total)))
    assert steps and steps[-1] == (2, 2)
    marker = json.loads((tmp_path / MARKER).read_text())
    assert marker["settings"]["world_seed"] == 3 and len(marker["epoch_losses"]) == 1
    assert str(3 + TRAINING_SEED_OFFSET) in marker["trained_on"]
    stamps = {name: (tmp_path / name).stat().st_mtime_ns for name in (MARKER, "open_clip_model.safetensors")}

    train_demo_clip(tmp_path, config, lambda *_: pytest.fail("a model trained the same way is reused"))
    assert {name: (tmp_path / name).stat().st_mtime_ns for name in stamps} == stamps

    train_demo_clip(tmp_path, replace(config, epochs=2))
    assert json.loads((tmp_path / MARKER).read_text())["settings"]["epochs"] == 2
    monkeypatch.setattr("workers.demo.training.TRAINING_CODE_VERSION", "other")
    before = (tmp_path / MARKER).stat().st_mtime_ns
    train_demo_clip(tmp_path, replace(config, epochs=2))
    assert (tmp_path / MARKER).stat().st_mtime_ns != before


def test_a_frame_is_paired_with_its_caption_as_json_and_as_prose():
    plan = plan_demo_world(DemoWorldConfig(seconds=12, seed=WORLD_SEED))[3]
    as_json, as_prose = caption_texts(plan)
    caption = shot_caption(plan)
    assert json.loads(as_json) == caption
    assert caption["background"] in as_prose.lower() and caption["salient_objects"] in as_prose
    assert all(character["description"] in as_prose for character in caption["characters"])


def test_the_trained_clip_loads_through_the_ordinary_path(models, demo_frames):
    import open_clip

    spec = models["trained"]
    assert spec.model_name.startswith("local-dir:") and spec.key != models["untrained"].key
    model, preprocess = load_clip(spec, torch.device("cpu"))
    assert model.visual.image_size == (TINY.image_size, TINY.image_size)
    frame = Image.open(demo_frames[1][0][1])
    assert tuple(preprocess(frame).shape) == (3, TINY.image_size, TINY.image_size)  # the whole 16:9 frame, squashed
    model, preprocess, tokenizer = load_clip_scorer(spec, torch.device("cpu"))
    assert isinstance(tokenizer, open_clip.tokenizer.SimpleTokenizer)  # what CLIPScore cuts chunks with

    plans, items = demo_frames
    assert _vectors(spec, items).shape[1] == TINY.embed_dim
    captions = {key: json.dumps(shot_caption(plans[key])) for key, _ in items}
    report = clip_scores_for_images(model, preprocess, tokenizer, items, captions)
    assert len(report.rows) == len(items) and not report.failed_images
    assert any(row.chunked for row in report.rows)  # long JSON captions take two chunks
    assert len({round(row.cosine, 4) for row in report.rows}) > 10


def _true_caption_wins(spec, demo_frames) -> float:
    """How often CLIPScore prefers a frame's own caption to that of a shot in another place."""
    plans, items = demo_frames
    model, preprocess, tokenizer = load_clip_scorer(spec, torch.device("cpu"))
    rng = np.random.default_rng(0)
    decoy = {
        key: rng.choice([other for other, p in enumerate(plans) if p.shot.background != plans[key].shot.background])
        for key, _ in items
    }
    own = {key: json.dumps(shot_caption(plans[key])) for key, _ in items}
    others = {key: json.dumps(shot_caption(plans[decoy[key]])) for key, _ in items}
    scores = [clip_scores_for_images(model, preprocess, tokenizer, items, c).rows for c in (own, others)]
    assert len(scores[0]) == len(scores[1]) == len(items)
    return float(np.mean([a.cosine > b.cosine for a, b in zip(*scores, strict=True)]))


def _retrieval_accuracy(spec, demo_frames) -> tuple[float, float]:
    """Image → caption top-1 accuracy among the distinct captions of the frames, and chance."""
    from workers.metrics.clipscore import caption_embeddings

    plans, items = demo_frames
    model, _, tokenizer = load_clip_scorer(spec, torch.device("cpu"))
    captions = [json.dumps(shot_caption(plan)) for plan in plans]
    distinct = sorted(set(captions))
    text, _, _ = caption_embeddings(model, tokenizer, distinct)
    best = np.argmax(_vectors(spec, items) @ text.T, axis=1)
    hits = [distinct[choice] == caption for choice, caption in zip(best, captions, strict=True)]
    return float(np.mean(hits)), 1 / len(distinct)


def test_the_trained_clip_matches_frames_of_an_unseen_seed_with_their_captions(models, demo_frames):
    trained, untrained = (_true_caption_wins(models[name], demo_frames) for name in ("trained", "untrained"))
    assert trained >= 0.9 and trained > untrained + 0.25, (trained, untrained)
    (trained_top1, chance), (untrained_top1, _) = (_retrieval_accuracy(models[n], demo_frames) for n in models)
    assert trained_top1 > 3 * chance and trained_top1 > untrained_top1, (trained_top1, untrained_top1, chance)


def _background_gap(spec, demo_frames) -> tuple[float, float]:
    plans, items = demo_frames
    vectors = _vectors(spec, items)
    places = np.array([plan.shot.background for plan in plans])
    cosines = vectors @ vectors.T
    same = (places[:, None] == places[None, :]) & ~np.eye(len(places), dtype=bool)
    across = places[:, None] != places[None, :]
    return float(cosines[same].mean()), float(cosines[across].mean())


def test_frames_of_one_place_cluster_together_in_the_trained_clip(models, demo_frames):
    within, across = _background_gap(models["trained"], demo_frames)
    untrained_within, untrained_across = _background_gap(models["untrained"], demo_frames)
    # A random CLIP already puts frames of one colour scheme a little closer; training spreads the places apart.
    assert within > across + 0.3, (within, across)
    assert within - across > 3 * (untrained_within - untrained_across)


def test_a_folder_models_key_is_its_folder_not_random_weights(tmp_path):
    from workers.demo.clip import demo_clip_spec

    spec = demo_clip_spec(tmp_path / "clip")
    assert spec.key == f"local-dir:{(tmp_path / 'clip').resolve()}" and "random" not in spec.key
    assert demo_clip_spec(tmp_path / "other").key != spec.key

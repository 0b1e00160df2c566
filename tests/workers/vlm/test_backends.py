"""The transformers backend on the tiny profile: same loading path as a checkpoint, batching that
does not change greedy outputs, adapters, pixel budgets."""

import pytest
from PIL import Image

from workers.vlm.backends import ModelSpec, PromptImages, fit_pixels, load_backend
from workers.vlm.prompts import caption_prompt, detection_prompt


def spec(path, **overrides) -> ModelSpec:
    settings = {"max_new_tokens": 10, "reference_max_pixels": 112 * 112, "target_max_pixels": 224 * 224}
    return ModelSpec(name="tiny", model=str(path), **{**settings, **overrides})


def test_detection_prompt_interleaves_references_names_and_descriptions(world):
    cards, frames = world
    prompt = detection_prompt(cards, frames[0])
    parts = prompt.messages[0]["content"]
    assert [p["type"] for p in parts[:2]] == ["image", "text"] and parts[1]["text"].startswith("Ellie: ")
    assert [p["text"].split(":")[0] for p in parts if p["type"] == "text"][:3] == ["Ellie", "Sprite", "Victor"]
    assert parts[-1] == {"type": "image"} and prompt.images[-1] == frames[0] and prompt.target_index == 3
    assert "JSON list of names, sorted alphabetically" in prompt.text and prompt.version == "detect-v1"


def test_caption_prompt_variants(world):
    cards, frames = world
    everyone = caption_prompt(cards, frames[0], detected=False)
    nobody = caption_prompt([], frames[0], detected=True)
    assert "may or may not appear" in everyone.text and len(everyone.images) == 4
    assert "found no known character" in nobody.text and nobody.images == [frames[0]]
    assert '"salient_objects"' in everyone.text


@pytest.mark.parametrize("model", ["qwen", "internvl"])
def test_batched_and_prefix_reusing_generation_give_the_naive_greedy_outputs(tiny_models, world, model):
    cards, frames = world
    prompts = [detection_prompt(cards, frame) for frame in frames]
    naive = load_backend(spec(tiny_models[model], batch_size=1)).generate_plain(prompts)
    batched = load_backend(spec(tiny_models[model], batch_size=4)).generate_plain(prompts)
    fast = load_backend(spec(tiny_models[model], batch_size=4)).generate(prompts)  # prefix reuse on Qwen
    assert [o.text for o in batched] == [o.text for o in naive]
    assert [o.text for o in fast] == [o.text for o in naive]
    assert all(o.error == "" and o.seconds > 0 for o in fast)


def test_prefix_reuse_handles_frames_of_different_sizes_and_falls_back_when_prefixes_differ(tiny_models, world):
    from PIL import Image

    cards, frames = world
    tall = frames[0].parent / "tall.jpg"
    Image.open(frames[1]).rotate(90, expand=True).save(tall)
    mixed = [detection_prompt(cards, frame) for frame in [frames[0], tall, frames[2]]]
    backend = load_backend(spec(tiny_models["qwen"], batch_size=4))
    assert [o.text for o in backend.generate(mixed)] == [o.text for o in backend.generate_plain(mixed)]
    differing = [detection_prompt(cards, frames[0]), detection_prompt(cards[:2], frames[1])]
    assert [o.text for o in backend.generate(differing)] == [o.text for o in backend.generate_plain(differing)]
    # Nobody detected: caption prompts with no reference image share nothing and go the plain way.
    bare = [caption_prompt([], frame, detected=True) for frame in frames[:2]]
    assert [o.text for o in backend.generate(bare)] == [o.text for o in backend.generate_plain(bare)]


def test_an_adapter_loads_on_top_of_the_base_model(tiny_models, world, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    base = AutoModelForImageTextToText.from_pretrained(tiny_models["qwen"])
    lora = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)  # random: visible change
    get_peft_model(base, lora).save_pretrained(tmp_path / "adapter")

    cards, frames = world
    prompts = [detection_prompt(cards, frame) for frame in frames[:3]]
    plain = load_backend(spec(tiny_models["qwen"], max_new_tokens=16)).generate(prompts)
    adapted_backend = load_backend(spec(tiny_models["qwen"], max_new_tokens=16, adapter=str(tmp_path / "adapter")))
    adapted = adapted_backend.generate(prompts)
    assert adapted_backend.spec.version == "tiny+adapter"
    assert [o.text for o in adapted] != [o.text for o in plain]
    # the prefix-reusing path runs the adapter too, and agrees with plain generate
    assert [o.text for o in adapted] == [o.text for o in adapted_backend.generate_plain(prompts)]


def test_references_and_targets_get_their_own_pixel_budgets(world):
    cards, frames = world
    prompt = detection_prompt(cards, frames[0])
    images = PromptImages(reference_max_pixels=64 * 64, target_max_pixels=320 * 180).load(prompt)
    assert all(image.width * image.height <= 64 * 64 for image in images[:-1])
    assert images[-1].size == (320, 180)
    assert fit_pixels(Image.new("RGB", (100, 50)), 10**6).size == (100, 50)  # never upscaled


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown VLM backend 'nope'"):
        load_backend(ModelSpec(name="x", backend="nope"))

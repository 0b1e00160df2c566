"""The transformers backend on the tiny profile: same loading path as a checkpoint, batching that
does not change greedy outputs, adapters, pixel budgets."""

import pytest
from PIL import Image

from tests.assertions import assert_informative
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


@pytest.fixture
def prefix_path(monkeypatch):
    """What the shared-prefix decoder did: runs that decoded, prefixes computed, fallbacks and why."""
    from workers.vlm import prefix

    seen = {"decoded": 0, "prefixes": 0, "fallbacks": []}
    generate, compute_prefix = prefix.SharedPrefixDecoder.generate, prefix.SharedPrefixDecoder._prefix

    def spy_generate(self, prompts):
        try:
            texts = generate(self, prompts)
        except prefix.PrefixUnsupported as exc:
            seen["fallbacks"].append(str(exc))
            raise
        seen["decoded"] += 1
        return texts

    def spy_prefix(self, *args):
        seen["prefixes"] += 1
        return compute_prefix(self, *args)

    monkeypatch.setattr(prefix.SharedPrefixDecoder, "generate", spy_generate)
    monkeypatch.setattr(prefix.SharedPrefixDecoder, "_prefix", spy_prefix)
    return seen


@pytest.mark.parametrize("model", ["qwen", "internvl"])
def test_batched_and_prefix_reusing_generation_give_the_naive_greedy_outputs(tiny_models, world, model, prefix_path):
    from workers.vlm.prefix import supports_prefix_reuse

    cards, frames = world
    prompts = [detection_prompt(cards, frame) for frame in frames]
    naive = [o.text for o in load_backend(spec(tiny_models[model], batch_size=1)).generate_plain(prompts)]
    assert_informative(naive)
    batched = load_backend(spec(tiny_models[model], batch_size=4)).generate_plain(prompts)
    fast_backend = load_backend(spec(tiny_models[model], batch_size=4))
    fast = fast_backend.generate(prompts)
    assert [o.text for o in batched] == naive
    assert [o.text for o in fast] == naive
    assert all(o.error == "" and o.seconds > 0 for o in fast)
    # The shared prefix is implemented for Qwen2.5-VL: there `generate` must have taken it (one
    # prefix for six same-size frames); InternVL has no such path and goes the plain way.
    if model == "qwen":
        assert supports_prefix_reuse(fast_backend.model)
        assert prefix_path == {"decoded": 1, "prefixes": 1, "fallbacks": []}
    else:
        assert not supports_prefix_reuse(fast_backend.model)
        assert prefix_path == {"decoded": 0, "prefixes": 0, "fallbacks": []}


def test_prefix_reuse_handles_frames_of_different_sizes_and_falls_back_when_prefixes_differ(
    tiny_models, world, prefix_path
):
    from PIL import Image

    cards, frames = world
    tall = frames[0].parent / "tall.jpg"
    Image.open(frames[1]).rotate(90, expand=True).save(tall)
    mixed = [detection_prompt(cards, frame) for frame in [frames[0], tall, frames[2]]]
    backend = load_backend(spec(tiny_models["qwen"], batch_size=4))
    plain = [o.text for o in backend.generate_plain(mixed)]
    assert_informative(plain)
    assert [o.text for o in backend.generate(mixed)] == plain
    assert prefix_path == {"decoded": 1, "prefixes": 2, "fallbacks": []}  # one prefix per patch grid

    differing = [detection_prompt(cards, frames[0]), detection_prompt(cards[:2], frames[1])]
    plain = [o.text for o in backend.generate_plain(differing)]
    assert_informative(plain)
    assert [o.text for o in backend.generate(differing)] == plain
    assert prefix_path["decoded"] == 1 and prefix_path["fallbacks"] == ["the prompts do not share one prefix"]

    # Nobody detected: caption prompts with no reference image share nothing and go the plain way.
    bare = [caption_prompt([], frame, detected=True) for frame in frames[:2]]
    plain = [o.text for o in backend.generate_plain(bare)]
    assert_informative(plain)
    assert [o.text for o in backend.generate(bare)] == plain
    assert prefix_path["decoded"] == 1 and prefix_path["fallbacks"][1].startswith("no reference image")


def test_an_adapter_loads_on_top_of_the_base_model(tiny_models, world, tmp_path, prefix_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    base = AutoModelForImageTextToText.from_pretrained(tiny_models["qwen"])
    lora = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)  # random: visible change
    get_peft_model(base, lora).save_pretrained(tmp_path / "adapter")

    cards, frames = world
    prompts = [detection_prompt(cards, frame) for frame in frames[:3]]
    plain = load_backend(spec(tiny_models["qwen"], max_new_tokens=16)).generate(prompts)
    adapted_backend = load_backend(spec(tiny_models["qwen"], max_new_tokens=16, adapter=str(tmp_path / "adapter")))
    adapted = [o.text for o in adapted_backend.generate(prompts)]
    assert adapted_backend.spec.version == "tiny+adapter"
    assert_informative(adapted)
    assert adapted != [o.text for o in plain]
    # the prefix-reusing path (taken by both backends: through the PEFT wrapper too) runs the
    # adapter, and agrees with plain generate
    assert prefix_path == {"decoded": 2, "prefixes": 2, "fallbacks": []}
    assert adapted == [o.text for o in adapted_backend.generate_plain(prompts)]


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

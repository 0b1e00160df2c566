"""Constrained decoding on the transformers backend (xgrammar): the grammars admit exactly the
answers the parsers want, real tiny models' constrained answers parse, and the decoding paths
(plain and shared-prefix, batched or not, with an adapter) still give the same greedy outputs."""

import dataclasses
import json

import pytest

from tests.assertions import assert_informative
from workers.metrics.judge import JudgeItem, judge_prompt, parse_judgement
from workers.vlm.backends import ModelSpec, load_backend
from workers.vlm.parsing import parse_caption, parse_detection
from workers.vlm.prompts import CharacterCard, caption_prompt, detection_grammar, detection_prompt
from workers.vlm.tiny import build_tiny_qwen2_5_vl

pytest.importorskip("xgrammar")


def spec(path, **overrides) -> ModelSpec:
    settings = {
        "max_new_tokens": 16,
        "reference_max_pixels": 112 * 112,
        "target_max_pixels": 224 * 224,
        "constrained": True,
        "batch_size": 4,
    }
    return ModelSpec(name="tiny", model=str(path), **{**settings, **overrides})


@pytest.fixture(scope="session")
def constrained_qwen(tmp_path_factory):
    """A tiny Qwen2.5-VL whose constrained answers differ across the world's frames. Under the
    detection grammar the conftest's Qwen names the same character in every frame (its greedy
    choice among names barely depends on the image), which would make a comparison of paths
    compare constants; these weights (another seed, a larger std) give varied lists."""
    return build_tiny_qwen2_5_vl(tmp_path_factory.mktemp("vlm-constrained") / "qwen", seed=3, init_std=0.3)


@pytest.fixture
def decoded_by_prefix(monkeypatch):
    """How many batches the shared-prefix decoder decoded (so a test knows that path ran)."""
    from workers.vlm import prefix

    seen = {"batches": 0}
    decode = prefix.SharedPrefixDecoder._decode

    def spy(self, *args):
        seen["batches"] += 1
        return decode(self, *args)

    monkeypatch.setattr(prefix.SharedPrefixDecoder, "_decode", spy)
    return seen


@pytest.fixture(scope="session")
def grammars(tiny_models):
    return load_backend(spec(tiny_models["internvl"])).answer_grammars()


def admits(grammars, prompt, text: str) -> bool:
    """Whether the prompt's compiled grammar admits `text` as a whole answer."""
    import xgrammar

    matcher = xgrammar.GrammarMatcher(grammars.compile(prompt))
    return matcher.accept_string(text) and matcher.is_completed()


def roster_of(cards) -> dict[str, list[str]]:
    return {card.name: [] for card in cards}


# --- the grammars themselves -------------------------------------------------------------------


def test_detection_grammar_admits_each_roster_name_once_in_alphabetical_order(grammars, world):
    cards, frames = world
    prompt = detection_prompt(cards, frames[0])
    assert prompt.answer_grammar == detection_grammar(["Ellie", "Sprite", "Victor"])
    for answer in ["[]", '["Ellie"]', '["Sprite"]', '["Ellie", "Victor"]', '["Ellie", "Sprite", "Victor"]']:
        assert admits(grammars, prompt, answer), answer
    for answer in [
        '["Victor", "Ellie"]',  # not alphabetical
        '["Ellie", "Ellie"]',  # a name twice
        '["Ellie", "Sprite", "Sprite"]',
        '["Bruno"]',  # not on the roster
        '["ellie"]',
        '["Ellie","Victor"]',  # not the prompt's spacing
        '["Ellie", ]',
        "Ellie",
        "",
    ]:
        assert not admits(grammars, prompt, answer), answer


def test_detection_grammar_escapes_names_as_json_does(grammars, tmp_path):
    names = ['Dr. "Q" Quinn', "Back\\slash", "O'Neil", "Zoë"]
    cards = [CharacterCard(name=name, description="someone") for name in names]
    prompt = detection_prompt(cards, tmp_path / "frame.jpg")
    ordered = sorted(names, key=str.casefold)
    everyone = json.dumps(ordered, ensure_ascii=False)
    assert admits(grammars, prompt, everyone)
    assert parse_detection(everyone, roster_of(cards)).names == ordered
    assert admits(grammars, prompt, json.dumps(['Dr. "Q" Quinn', "Zoë"], ensure_ascii=False))
    assert not admits(grammars, prompt, '["Dr. "Q" Quinn"]')  # the quote must be escaped
    assert not admits(grammars, prompt, '["Back\\slash"]')  # so must the backslash
    empty = detection_prompt([], tmp_path / "frame.jpg")
    assert admits(grammars, empty, "[]") and not admits(grammars, empty, '["Ellie"]')


def test_caption_and_judge_schemas_admit_only_what_their_parsers_read(grammars, world):
    cards, frames = world
    caption = caption_prompt(cards, frames[0], detected=False)
    good = {
        "scene": "Ellie waves.",
        "background": "A meadow at dusk.",
        "characters": [{"name": "Ellie", "description": "a girl in a red coat"}],
        "salient_objects": 'a kite, a "lucky" stone',
    }
    text = json.dumps(good, ensure_ascii=False)
    assert admits(grammars, caption, text) and parse_caption(text).ok
    escaped = json.dumps({**good, "salient_objects": "a kite\non a rock"})
    assert admits(grammars, caption, escaped) and parse_caption(escaped).ok
    for bad in [
        {**good, "scene": ""},  # parse_caption refuses an empty scene
        {**good, "scene": "Ellie\nwaves."},  # written raw below: not JSON (json.loads refuses it)
        {**good, "background": "tab\there"},
        {**good, "salient_objects": "a kite\non a rock"},
        {key: value for key, value in good.items() if key != "background"},
    ]:
        raw = json.dumps(bad, ensure_ascii=False).replace("\\n", "\n").replace("\\t", "\t")
        assert not admits(grammars, caption, raw), raw
    assert not admits(grammars, caption, json.dumps(good, indent=2))  # compact only: tokens are scarce

    judge = judge_prompt(JudgeItem(0, frames[0], good), cards)
    scores = {"salient_objects": 7, "characters": 10, "background": 1, "scene": 6}
    assert admits(grammars, judge, json.dumps(scores)) and parse_judgement(json.dumps(scores)).ok
    for bad in [{**scores, "scene": 11}, {**scores, "scene": 0}, {**scores, "scene": 7.5}, {"scene": 6}]:
        assert not admits(grammars, judge, json.dumps(bad)), bad


def test_a_caption_names_only_the_characters_its_prompt_gave(grammars, world):
    cards, frames = world
    given = [card for card in cards if card.name in ("Ellie", "Victor")]
    caption = caption_prompt(given, frames[0], detected=True)

    def with_names(*names):  # the keys in the schema's order, as constrained decoding writes them
        characters = [{"name": n, "description": "here"} for n in names]
        return json.dumps(
            {"scene": "A walk.", "background": "A meadow.", "characters": characters, "salient_objects": "a kite"}
        )

    assert admits(grammars, caption, with_names("Ellie")) and admits(grammars, caption, with_names("Victor", "Ellie"))
    assert not admits(grammars, caption, with_names("Sprite"))  # on the roster, but not given
    assert not admits(grammars, caption, with_names("Ellie Smith"))
    nobody = caption_prompt([], frames[0], detected=True)  # the detector found no one
    assert admits(grammars, nobody, with_names()) and not admits(grammars, nobody, with_names("Ellie"))
    roster = caption_prompt(cards, frames[0], detected=False)  # no detection: anyone on the roster
    assert all(admits(grammars, roster, with_names(card.name)) for card in cards)


# --- real models under the grammars ------------------------------------------------------------


@pytest.mark.parametrize("model", ["qwen", "internvl"])
def test_constrained_detections_are_sorted_duplicate_free_roster_subsets(model, tiny_models, constrained_qwen, world):
    cards, frames = world
    path = constrained_qwen if model == "qwen" else tiny_models[model]
    outputs = load_backend(spec(path)).generate([detection_prompt(cards, frame) for frame in frames])
    texts = [output.text for output in outputs]
    assert_informative(texts)
    for text in texts:
        parsed = parse_detection(text, roster_of(cards))
        assert parsed.ok and parsed.flags == [] and parsed.unknown == [], text
        assert json.loads(text) == parsed.names == sorted(set(parsed.names), key=str.casefold), text


def test_constrained_captions_and_judgements_parse(constrained_qwen, tiny_models, world):
    import xgrammar

    cards, frames = world
    captioner = load_backend(spec(constrained_qwen, max_new_tokens=200))
    prompts = [caption_prompt(cards, frame, detected=False) for frame in frames[:3]]
    texts = [output.text for output in captioner.generate(prompts)]
    assert_informative(texts)
    finished = 0
    for prompt, text in zip(prompts, texts, strict=True):
        # Every answer stays inside the schema; one the token budget cut short is its prefix.
        matcher = xgrammar.GrammarMatcher(captioner.answer_grammars().compile(prompt))
        assert matcher.accept_string(text), text
        if matcher.is_completed():
            finished += 1
            parsed = parse_caption(text)
            assert parsed.ok and parsed.flags == [], (text, parsed.error)
    assert finished >= 2, texts  # at this budget the toy model closes its answers

    judge = load_backend(spec(tiny_models["internvl"], max_new_tokens=64))  # the rubric asks for ≥ 64
    items = [JudgeItem(index, frame, texts[0]) for index, frame in enumerate(frames[:4])]
    judgements = [output.text for output in judge.generate([judge_prompt(item, cards) for item in items])]
    assert len(judgements) == 4  # (a toy judge may give every frame the same scores: only parsing is tested)
    for text in judgements:
        parsed = parse_judgement(text)
        assert parsed.ok and parsed.flags == (), (text, parsed.error)


# --- the decoding paths agree under constraints ------------------------------------------------


def test_shared_prefix_batched_and_one_by_one_decoding_agree_under_constraints(
    constrained_qwen, tiny_models, world, decoded_by_prefix
):
    cards, frames = world
    detections = [detection_prompt(cards, frame) for frame in frames[1:5]]
    captions = [caption_prompt(cards, frame, detected=False) for frame in frames[:3]]
    for prompts, max_new_tokens in [(detections, 16), (captions, 24)]:
        one_by_one = load_backend(spec(constrained_qwen, batch_size=1, max_new_tokens=max_new_tokens))
        naive = [output.text for output in one_by_one.generate_plain(prompts)]
        assert_informative(naive)
        backend = load_backend(spec(constrained_qwen, batch_size=4, max_new_tokens=max_new_tokens))
        before = decoded_by_prefix["batches"]
        assert [output.text for output in backend.generate(prompts)] == naive
        assert decoded_by_prefix["batches"] > before  # Qwen2.5-VL took the shared-prefix path
        assert [output.text for output in backend.generate_plain(prompts)] == naive

    # InternVL has no shared-prefix path: batching alone
    prompts = [detection_prompt(cards, frame) for frame in frames]
    naive = [o.text for o in load_backend(spec(tiny_models["internvl"], batch_size=1)).generate_plain(prompts)]
    assert_informative(naive)
    assert [o.text for o in load_backend(spec(tiny_models["internvl"], batch_size=4)).generate(prompts)] == naive


def test_constrained_decoding_runs_the_adapter_on_both_paths(constrained_qwen, world, tmp_path, decoded_by_prefix):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    base = AutoModelForImageTextToText.from_pretrained(constrained_qwen)
    lora = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)  # random: visible change
    get_peft_model(base, lora).save_pretrained(tmp_path / "adapter")

    cards, frames = world
    prompts = [caption_prompt(cards, frame, detected=False) for frame in frames[:3]]
    plain = [o.text for o in load_backend(spec(constrained_qwen, max_new_tokens=24)).generate(prompts)]
    adapted_backend = load_backend(spec(constrained_qwen, max_new_tokens=24, adapter=str(tmp_path / "adapter")))
    adapted = [o.text for o in adapted_backend.generate(prompts)]
    assert decoded_by_prefix["batches"] == 2  # both through the shared prefix, PEFT wrapper included
    assert_informative(adapted)
    assert adapted != plain
    assert all(text.startswith('{"scene": "') for text in adapted), adapted
    assert adapted == [o.text for o in adapted_backend.generate_plain(prompts)]
    detections = [o.text for o in adapted_backend.generate([detection_prompt(cards, frame) for frame in frames[:4]])]
    assert all(parse_detection(text, roster_of(cards)).flags == [] for text in detections), detections


def test_a_prompt_without_schema_decodes_freely_beside_constrained_ones(tiny_models, world):
    cards, frames = world
    free = dataclasses.replace(detection_prompt(cards, frames[1]), json_schema=None, answer_grammar=None)
    constrained = load_backend(spec(tiny_models["internvl"]))
    unconstrained = load_backend(spec(tiny_models["internvl"], constrained=False))
    mixed = [o.text for o in constrained.generate_plain([detection_prompt(cards, frames[0]), free])]
    assert mixed[1] == unconstrained.generate_plain([free])[0].text
    assert json.loads(mixed[0]) == parse_detection(mixed[0], roster_of(cards)).names


def test_constrained_off_leaves_generation_as_it_was(tiny_models, world):
    """constrained=False: exactly transformers' own greedy `generate`, and xgrammar never loaded."""
    import torch

    cards, frames = world
    prompts = [detection_prompt(cards, frame) for frame in frames[:4]]
    backend = load_backend(spec(tiny_models["internvl"], constrained=False))
    outputs = [o.text for o in backend.generate(prompts)]
    assert_informative(outputs)
    expected = []
    for start in range(0, len(prompts), 4):
        inputs = backend._inputs(prompts[start : start + 4])
        with torch.inference_mode():
            generated = backend.model.generate(**inputs, max_new_tokens=16, do_sample=False)
        new_tokens = generated[:, inputs["input_ids"].shape[1] :]
        expected += [text.strip() for text in backend.processor.batch_decode(new_tokens, skip_special_tokens=True)]
    assert outputs == expected
    assert backend._grammars is None
    constrained = [o.text for o in load_backend(spec(tiny_models["internvl"])).generate(prompts)]
    assert constrained != outputs  # the setting is what changes them

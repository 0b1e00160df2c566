"""What the model is trained on: the detector's own prompt, the answer parse_detection reads, and a
loss on the answer tokens only — the same sums whether or not a batch shares its prompt prefix."""

import pytest
import torch

from workers.train.data import IGNORE_INDEX, ExampleEncoder, answer_text, collate, epoch_batches, step_plan
from workers.train.modeling import AnswerLoss, ImageFeatures
from workers.vlm.backends import PromptImages
from workers.vlm.parsing import parse_detection
from workers.vlm.prompts import detection_prompt


@pytest.fixture(scope="module")
def loaded(tiny_model):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(tiny_model).eval()
    return model, AutoProcessor.from_pretrained(tiny_model)


@pytest.fixture(scope="module")
def encoded(loaded, small_set):
    model, processor = loaded
    roster, train, _ = small_set
    encoder = ExampleEncoder(processor, model.model.get_rope_index, roster, 1, 56 * 56, 112 * 64)
    return [encoder.encode(example) for example in train]


def test_the_answer_is_what_parse_detection_reads_back():
    assert answer_text(["Victor", "ellie", "Victor"]) == '["ellie", "Victor"]'
    assert answer_text([]) == "[]"
    roster = {"Ellie": [], "Victor": []}
    assert parse_detection(answer_text(["Victor", "Ellie"]), roster).names == ["Ellie", "Victor"]
    assert parse_detection(answer_text(["Victor", "Ellie"]), roster).flags == []


def test_only_the_answer_and_the_end_of_turn_carry_labels(encoded, loaded, small_set):
    _, processor = loaded
    tokenizer = processor.tokenizer
    _, train, _ = small_set
    for example, source in zip(encoded, train, strict=True):
        labelled = (example.labels != IGNORE_INDEX).nonzero().flatten()
        # one contiguous run at the very end: the answer, then <|im_end|>
        assert labelled.tolist() == list(range(len(example.labels) - len(labelled), len(example.labels)))
        assert tokenizer.decode(example.labels[labelled]) == answer_text(source.names) + "<|im_end|>"
        assert torch.equal(example.labels[labelled], example.input_ids[labelled])
        assert tokenizer.decode(example.input_ids[: example.prompt_length]).endswith("<|im_start|>assistant\n")


def test_the_prompt_is_the_detectors_prompt_token_for_token(encoded, loaded, small_set):
    _, processor = loaded
    roster, train, _ = small_set
    prompt = detection_prompt(roster, train[0].image_path)
    text = processor.apply_chat_template(prompt.messages, add_generation_prompt=True, tokenize=False)
    images = PromptImages(56 * 56, 112 * 64).load(prompt)
    expected = processor(text=[text], images=[images], return_tensors="pt")["input_ids"][0]
    assert torch.equal(encoded[0].input_ids[: encoded[0].prompt_length], expected)


def test_padding_carries_no_label_and_the_prefix_is_shared(encoded, loaded):
    _, processor = loaded
    lengths = {len(example.input_ids) for example in encoded}
    assert len(lengths) > 1, "the fixture should hold answers of different lengths"
    batch = collate(encoded, processor.tokenizer.pad_token_id, share_prefix=True)
    assert batch.prefix_ids is not None and batch.prefix_ids.shape[1] == encoded[0].split
    assert batch.answer_tokens == sum(example.answer_tokens for example in encoded)
    padding = batch.attention_mask[:, batch.prefix_ids.shape[1] :] == 0
    assert padding.any() and (batch.labels[padding] == IGNORE_INDEX).all()


def test_loss_counts_answer_tokens_only_and_sharing_the_prefix_changes_nothing(encoded, loaded, small_set):
    model, processor = loaded
    roster, train, _ = small_set
    features = ImageFeatures(model, processor.image_processor, torch.device("cpu"), False, True, set())
    loss = AnswerLoss(model, features)
    pad = processor.tokenizer.pad_token_id
    with torch.no_grad():
        shared = loss(collate(encoded, pad, share_prefix=True))
        whole = loss(collate(encoded, pad, share_prefix=False))
        # The reference: the model's own forward from pixels (its own positions), cross-entropy on the labels.
        expected = 0.0
        for example, source in zip(encoded, train, strict=True):
            prompt = detection_prompt(roster, source.image_path)
            text = processor.apply_chat_template(prompt.messages, add_generation_prompt=True, tokenize=False)
            inputs = processor(text=[text], images=[PromptImages(56 * 56, 112 * 64).load(prompt)], return_tensors="pt")
            answer_length = example.answer_tokens
            logits = model(
                input_ids=example.input_ids[None],
                pixel_values=inputs["pixel_values"],
                image_grid_thw=inputs["image_grid_thw"],
                mm_token_type_ids=torch.nn.functional.pad(inputs["mm_token_type_ids"], (0, answer_length)),
            ).logits[0, :-1]
            labels = torch.full_like(example.input_ids, IGNORE_INDEX)
            labels[-answer_length:] = example.input_ids[-answer_length:]
            expected += torch.nn.functional.cross_entropy(logits, labels[1:], reduction="sum")  # -100: skipped
    assert float(shared) == pytest.approx(float(expected), rel=1e-5)
    assert float(whole) == pytest.approx(float(expected), rel=1e-5)


def test_epoch_order_depends_only_on_seed_and_epoch(encoded):
    first = epoch_batches(encoded, batch_size=3, seed=5, epoch=1)
    assert epoch_batches(encoded, batch_size=3, seed=5, epoch=1) == first
    assert epoch_batches(encoded, batch_size=3, seed=5, epoch=2) != first
    assert sorted(index for batch in first for index in batch) == list(range(len(encoded)))
    # two processes × one micro-batch per step: a short last step is filled from the start
    plan = step_plan([[0], [1], [2]], micro_batches_per_step=2)
    assert plan == [[[0], [1]], [[2], [0]]]

"""Offline `tiny` VLMs: real Qwen2.5-VL (detector) and InternVL (captioner) architectures at toy
size with random weights. A byte-level BPE tokenizer is trained on a small local corpus, wrapped
with the models' special tokens and chat templates, and everything is written with
`save_pretrained`, so loading goes through `AutoProcessor` / `AutoModelForImageTextToText
.from_pretrained` exactly like a downloaded checkpoint. Outputs are meaningless until trained.
"""

import json
from pathlib import Path

QWEN_SPECIALS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
INTERNVL_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<img>", "</img>", "<IMG_CONTEXT>", "<video>"]

# Chat templates in the shape of the real models' (image parts become the model's image markers).
QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
INTERNVL_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<IMG_CONTEXT>\n"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

CORPUS = [
    "Ellie Victor Sprite Bruno Mira Tock Pip Luna",
    "Which characters appear in the image? Answer with a JSON list of names, sorted alphabetically.",
    '["Ellie", "Victor"] ["Sprite"] [] ["Bruno", "Mira", "Tock"]',
    '{"scene": "", "background": "", "characters": [{"name": "", "description": ""}], "salient_objects": ""}',
    "a meadow a forest a night street a living room a beach a snowy mountain underwater a desert",
    "the quick brown fox jumps over the lazy dog 0123456789 , . : ; ! ? ' \" ( ) [ ] { }",
]


def _built(folder: Path, init_std: float | None) -> bool:
    """The marker is written last: a half-built folder (or one built with other weights) is rebuilt."""
    marker = folder / "VIVE_TINY.json"
    return marker.exists() and json.loads(marker.read_text()).get("init_std") == init_std


def _redraw_weights(model, init_std: float | None) -> None:
    """Tests only: redraw every weight matrix from N(0, init_std²). At the default init the toy
    models ignore the image (InternVL repeats a newline, Qwen emits near-identical strings), so a
    test comparing two decoding paths would compare empty or constant outputs; with a larger std
    the greedy outputs are non-empty and differ from frame to frame. The shipped models keep the
    architectures' own init (init_std=None)."""
    if init_std is None:
        return
    import torch

    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() > 1:
                parameter.normal_(0.0, init_std)


def _tokenizer(folder: Path, specials: list[str], chat_template: str, extra: dict | None = None):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(CORPUS * 20, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=specials[1:],
        **(extra or {}),
    )
    tokenizer.chat_template = chat_template
    return tokenizer


def build_tiny_qwen2_5_vl(folder: Path, seed: int = 0, init_std: float | None = None) -> Path:
    """A 2-layer Qwen2.5-VL (hidden 64) with a 2-layer vision tower; returns the model folder.
    `init_std` is for tests only (see `_redraw_weights`)."""
    if _built(folder, init_std):
        return folder
    import torch
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer(folder, QWEN_SPECIALS, QWEN_CHAT_TEMPLATE)
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in QWEN_SPECIALS}
    image_processor = Qwen2VLImageProcessor(min_pixels=28 * 28 * 4, max_pixels=28 * 28 * 64)
    processor = Qwen2_5_VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(),
        chat_template=QWEN_CHAT_TEMPLATE,
    )
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
            "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]},
            "bos_token_id": ids["<|im_start|>"],
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
        },
        vision_config={
            "depth": 2,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_heads": 4,
            "out_hidden_size": 64,
            "fullatt_block_indexes": [1],
            "window_size": 56,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    _redraw_weights(model, init_std)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    (folder / "VIVE_TINY.json").write_text(
        json.dumps({"kind": "qwen2_5_vl", "note": "random weights", "init_std": init_std})
    )
    return folder


INTERNVL_EXTRA_SPECIALS = {
    "extra_special_tokens": {
        "start_image_token": "<img>",
        "end_image_token": "</img>",
        "context_image_token": "<IMG_CONTEXT>",
        "video_token": "<video>",
    }
}


def internvl_processor_and_config(tokenizer, image_size: int, hidden_size: int, layers: int, patch: int = 8):
    """An InternVL processor and config at toy size around `tokenizer` (one square tile per image;
    vision and text towers of the same width): the stock tiny captioner's and the demo's."""
    from transformers import GotOcr2ImageProcessor, InternVLConfig, InternVLProcessor, InternVLVideoProcessor

    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in INTERNVL_SPECIALS}
    processor = InternVLProcessor(
        image_processor=GotOcr2ImageProcessor(
            size={"height": image_size, "width": image_size}, crop_to_patches=False, do_convert_rgb=True
        ),
        tokenizer=tokenizer,
        video_processor=InternVLVideoProcessor(),
        image_seq_length=(image_size // patch // 2) ** 2,  # patches after the 0.5 pixel-shuffle downsampling
        chat_template=INTERNVL_CHAT_TEMPLATE,
    )
    config = InternVLConfig(
        vision_config={
            "hidden_size": hidden_size,
            "intermediate_size": 2 * hidden_size,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "image_size": [image_size, image_size],
            "patch_size": [patch, patch],
        },
        text_config={
            "model_type": "qwen2",
            "vocab_size": len(tokenizer),
            "hidden_size": hidden_size,
            "intermediate_size": 2 * hidden_size,
            "num_hidden_layers": layers,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
            "bos_token_id": ids["<|im_start|>"],
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
        },
        image_token_id=ids["<IMG_CONTEXT>"],
        downsample_ratio=0.5,
    )
    return processor, config


def build_tiny_internvl(folder: Path, seed: int = 0, init_std: float | None = None) -> Path:
    """A 2-layer InternVL (Qwen2 text, hidden 64; 2-layer vision tower, 64 px tiles).
    `init_std` is for tests only (see `_redraw_weights`)."""
    if _built(folder, init_std):
        return folder
    import torch
    from transformers import InternVLForConditionalGeneration

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer(folder, INTERNVL_SPECIALS, INTERNVL_CHAT_TEMPLATE, extra=INTERNVL_EXTRA_SPECIALS)
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in INTERNVL_SPECIALS}
    processor, config = internvl_processor_and_config(tokenizer, image_size=64, hidden_size=64, layers=2)
    torch.manual_seed(seed)
    model = InternVLForConditionalGeneration(config)
    _redraw_weights(model, init_std)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    (folder / "VIVE_TINY.json").write_text(
        json.dumps({"kind": "internvl", "note": "random weights", "init_std": init_std})
    )
    return folder

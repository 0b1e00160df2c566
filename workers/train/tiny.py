"""A toy Qwen2.5-VL that SFT can teach on a CPU in minutes: the test bed of `workers.train`.

`workers.vlm.tiny.build_tiny_qwen2_5_vl` makes the smallest model that runs the detector's code;
its random weights cannot be taught the detection prompt quickly, for two reasons a pretrained
checkpoint does not have, which this builder removes:

- Output scale. With the final RMSNorm in front of a head initialised at std 0.02, every logit
  stays within about ±1.5, so no answer can get more than ~1% probability and LoRA (which leaves
  the head alone) cannot sharpen it. Here the head is initialised at std 1/√hidden, the scale of
  a trained model's head.
- Prompt length in tokens. A random model's attention is nearly uniform, so the frame's share of
  the prompt is the share of signal the answer gets. The stock tokenizer, trained on a few lines,
  spends ~730 tokens on the detection prompt's text; a real tokenizer spends about one token per
  word. This one is trained the same way (byte-level BPE, word boundaries kept) on a corpus that
  also holds the prompt templates and the given texts (e.g. the roster's descriptions).

Everything else — special tokens, chat template, processor, `save_pretrained` folder — is the
stock tiny profile's, so the model loads through the same Auto classes as a real checkpoint.
"""

import json
from collections.abc import Sequence
from pathlib import Path

from workers.vlm.prompts import CAPTION_INSTRUCTIONS, DETECTION_INSTRUCTIONS
from workers.vlm.tiny import CORPUS, QWEN_CHAT_TEMPLATE, QWEN_SPECIALS

MARKER = "VIVE_TINY.json"


def word_tokenizer(
    corpus: Sequence[str],
    vocab_size: int,
    specials: Sequence[str] = tuple(QWEN_SPECIALS),
    chat_template: str = QWEN_CHAT_TEMPLATE,
    extra: dict | None = None,
):
    """A byte-level BPE about one token per word of `corpus`, with the model's special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)  # merges never cross a word boundary
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(specials),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(list(corpus) * 20, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=list(specials[1:]),
        **(extra or {}),
    )
    tokenizer.chat_template = chat_template
    return tokenizer


def build_learnable_tiny_qwen2_5_vl(
    folder: Path,
    texts: Sequence[str] = (),
    hidden_size: int = 128,
    vision_hidden_size: int = 128,
    layers: int = 2,
    vision_depth: int = 2,
    vocab_size: int = 2000,
    max_pixels: int = 28 * 28 * 64,
    seed: int = 0,
) -> Path:
    """A toy Qwen2.5-VL in `folder` (rebuilt only if missing); `texts` join the tokenizer's corpus."""
    if (folder / MARKER).exists():  # written last: a half-built folder is rebuilt
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
    tokenizer = word_tokenizer([*CORPUS, DETECTION_INSTRUCTIONS, CAPTION_INSTRUCTIONS, *texts], vocab_size)
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in QWEN_SPECIALS}
    processor = Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(min_pixels=28 * 28 * 4, max_pixels=max_pixels),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(),
        chat_template=QWEN_CHAT_TEMPLATE,
    )
    heads = 4
    rotary_pairs = hidden_size // heads // 2  # Qwen's 3-D RoPE splits them over (time, height, width)
    spatial = 3 * rotary_pairs // 8
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": hidden_size,
            "intermediate_size": 2 * hidden_size,
            "num_hidden_layers": layers,
            "num_attention_heads": heads,
            "num_key_value_heads": heads // 2,
            "max_position_embeddings": 4096,
            "rope_scaling": {"type": "mrope", "mrope_section": [rotary_pairs - 2 * spatial, spatial, spatial]},
            "bos_token_id": ids["<|im_start|>"],
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
        },
        vision_config={
            "depth": vision_depth,
            "hidden_size": vision_hidden_size,
            "intermediate_size": 2 * vision_hidden_size,
            "num_heads": heads,
            "out_hidden_size": hidden_size,
            "fullatt_block_indexes": [vision_depth - 1],
            "window_size": 56,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    with torch.no_grad():
        model.lm_head.weight.normal_(0.0, hidden_size**-0.5)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    (folder / MARKER).write_text(json.dumps({"kind": "qwen2_5_vl", "note": "random weights, learnable toy"}))
    return folder

"""Shared-prefix decoding for Qwen2.5-VL: the reference images and instructions are the same for
every frame of a detection run, so their vision-tower pass and KV cache are computed once, and
each frame pays only for its own image and the answer.

Exactness: positions follow Qwen2.5-VL's 3-D RoPE for the full prompt (computed once by the
model's own `get_rope_index`); frames are decoded greedily in groups that share the target's
patch grid (all frames of one video do), so no padding is needed. Tests check that the outputs
equal plain `generate` on the same prompts.
"""

import copy
from collections import defaultdict

import torch

from workers.vlm.prompts import Prompt


def _cache_of(output):
    """The KV cache a forward returned (transformers 5.x names it `cache`, older `past_key_values`)."""
    for name in ("cache", "past_key_values"):
        if name in output and output[name] is not None:
            return output[name]
    raise PrefixUnsupported("the model returned no KV cache")


class PrefixUnsupported(ValueError):
    """The model or the prompts do not fit the shared-prefix path; use plain generate."""


def _core(model):
    """The transformers model under a PEFT wrapper (an SFT'd detector), or the model itself."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def stop_token_ids(model, tokenizer) -> set[int]:
    """Every token that ends an answer: the chat turn's end and the model's end-of-sequence ids."""
    ids = {tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.eos_token_id}
    value = _core(model).generation_config.eos_token_id
    ids |= set([] if value is None else value if isinstance(value, list) else [value])
    return {token for token in ids if token is not None}


def logits_width(model) -> int:
    """How many token ids the model scores (its vocabulary, often padded past the tokenizer's)."""
    return _core(model).get_output_embeddings().weight.shape[0]


def supports_prefix_reuse(model) -> bool:
    core = _core(model)
    return hasattr(getattr(core, "model", None), "get_rope_index") and core.config.model_type == "qwen2_5_vl"


def _prefix_key(prompt: Prompt) -> tuple:
    content = prompt.messages[0]["content"]
    return tuple(str(part) for part in content[:-1]) + tuple(str(p) for p in prompt.images[:-1])


class SharedPrefixDecoder:
    """`grammars` (workers/vlm/constrained.py AnswerGrammars, or None): constrain each answer to
    its prompt's grammar, masked exactly as the plain path's logits processor masks it."""

    def __init__(self, model, processor, load_images, max_new_tokens: int, batch_size: int, grammars=None):
        if not supports_prefix_reuse(model):
            raise PrefixUnsupported("shared-prefix decoding is implemented for Qwen2.5-VL only")
        self.model, self.processor, self.load_images = model, processor, load_images
        self.rope_index = _core(model).model.get_rope_index
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size
        self.grammars = grammars
        tokenizer = processor.tokenizer
        self.vision_start = tokenizer.convert_tokens_to_ids("<|vision_start|>")
        self.eos_ids = stop_token_ids(model, tokenizer)
        self.pad_id = tokenizer.pad_token_id
        self.device = next(model.parameters()).device

    def generate(self, prompts: list[Prompt]) -> list[str]:
        if any(p.target_index != len(p.images) - 1 for p in prompts):
            raise PrefixUnsupported("the frame must be the prompt's last image")
        if any(len(p.images) < 2 for p in prompts):  # e.g. a caption prompt when nobody was detected
            raise PrefixUnsupported("no reference image before the frame: nothing worth sharing")
        if len({_prefix_key(p) for p in prompts}) != 1:
            raise PrefixUnsupported("the prompts do not share one prefix")
        images = [self.load_images(p) for p in prompts]
        template = self.processor.apply_chat_template(prompts[0].messages, add_generation_prompt=True, tokenize=False)
        # Each frame's patches once: they decide its group (patch grid) and feed the decode.
        targets = [self.processor.image_processor(images=[frame[-1]], return_tensors="pt") for frame in images]
        groups: dict[tuple, list[int]] = defaultdict(list)
        for index, target in enumerate(targets):
            groups[tuple(target["image_grid_thw"][0].tolist())].append(index)
        texts: list[str] = [""] * len(prompts)
        for members in groups.values():
            prefix = self._prefix(template, images[members[0]])
            for start in range(0, len(members), self.batch_size):
                chunk = members[start : start + self.batch_size]
                decoded = self._decode(prefix, [targets[i] for i in chunk], [prompts[i] for i in chunk])
                for index, text in zip(chunk, decoded, strict=True):
                    texts[index] = text
        return texts

    def _prefix(self, template: str, frame_images: list) -> dict:
        """Run the shared part once: its KV cache, plus what the suffix needs to continue from it."""
        full = self.processor(text=[template], images=[frame_images], return_tensors="pt").to(self.device)
        ids, grids = full["input_ids"], full["image_grid_thw"]
        positions, _ = self.rope_index(
            ids,
            mm_token_type_ids=full["mm_token_type_ids"],
            image_grid_thw=grids,
            attention_mask=full["attention_mask"],
        )
        split = int((ids[0] == self.vision_start).nonzero()[-1])  # the frame's image starts here
        reference_rows = int(grids[:-1].prod(dim=-1).sum())
        with torch.inference_mode():
            out = self.model(
                input_ids=ids[:, :split],
                attention_mask=full["attention_mask"][:, :split],
                position_ids=positions[:, :, :split],
                pixel_values=full["pixel_values"][:reference_rows],
                image_grid_thw=grids[:-1],
                mm_token_type_ids=full["mm_token_type_ids"][:, :split],
                use_cache=True,
            )
        return {
            "cache": _cache_of(out),
            "split": split,
            "suffix_ids": ids[:, split:],
            "suffix_mm": full["mm_token_type_ids"][:, split:],
            "suffix_positions": positions[:, :, split:],
            "next_position": int(positions.max()) + 1,
            "length": ids.shape[1],
        }

    @staticmethod
    def _greedy(logits, constraints):
        """The next token of every row: the argmax among the tokens its grammar allows, if any."""
        return (logits if constraints is None else constraints.mask(logits)).argmax(-1)

    def _decode(self, prefix: dict, targets: list, prompts: list[Prompt]) -> list[str]:
        batch = len(targets)
        constraints = self.grammars.rows(prompts) if self.grammars is not None else None
        pixels = {
            key: torch.cat([target[key] for target in targets]).to(self.device)
            for key in ("pixel_values", "image_grid_thw")
        }
        cache = copy.deepcopy(prefix["cache"])
        cache.batch_repeat_interleave(batch)
        length = prefix["length"]
        with torch.inference_mode():
            out = self.model(
                input_ids=prefix["suffix_ids"].repeat(batch, 1),
                attention_mask=torch.ones(batch, length, dtype=torch.long, device=self.device),
                position_ids=prefix["suffix_positions"].repeat(1, batch, 1),
                pixel_values=pixels["pixel_values"],
                image_grid_thw=pixels["image_grid_thw"],
                mm_token_type_ids=prefix["suffix_mm"].repeat(batch, 1),
                cache=cache,
                use_cache=True,
            )
            tokens = [[] for _ in range(batch)]
            finished = torch.zeros(batch, dtype=torch.bool, device=self.device)
            next_token = self._greedy(out.logits[:, -1], constraints)
            for step in range(self.max_new_tokens):
                for row in range(batch):
                    if not finished[row]:
                        token = int(next_token[row])
                        if constraints is not None:
                            constraints.accept(row, token)
                        if token in self.eos_ids:
                            finished[row] = True
                        else:
                            tokens[row].append(token)
                if bool(finished.all()) or step == self.max_new_tokens - 1:
                    break
                position = torch.full((3, batch, 1), prefix["next_position"] + step, device=self.device)
                fed = torch.where(finished, torch.full_like(next_token, self.pad_id), next_token)
                out = self.model(
                    input_ids=fed[:, None],
                    attention_mask=torch.ones(batch, length + step + 1, dtype=torch.long, device=self.device),
                    position_ids=position,
                    cache=cache,  # updated in place by every step
                    use_cache=True,
                )
                next_token = self._greedy(out.logits[:, -1], constraints)
        return [self.processor.tokenizer.decode(row, skip_special_tokens=True).strip() for row in tokens]

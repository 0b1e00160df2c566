"""The offline `tiny` CLIP: the real open_clip architecture at toy size with random weights.

It is written as an open_clip model config plus a checkpoint file, then loaded through the
same `create_model_and_transforms(name, pretrained=<file>)` call that real weights take. Its
vectors are meaningless until trained; it exists so every code path runs without a download.
"""

import json
import logging
from pathlib import Path

from workers.vision.clip import ClipModelSpec

TINY_CLIP_NAME = "vive-tiny-clip"
TINY_CLIP_CONFIG = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 224, "layers": 2, "width": 64, "patch_size": 32, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


def build_tiny_clip(folder: Path, seed: int = 0) -> ClipModelSpec:
    """Write (once) the config and a random-weight checkpoint into `folder`; return the spec."""
    import open_clip
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    config_path = folder / f"{TINY_CLIP_NAME}.json"
    checkpoint = folder / f"{TINY_CLIP_NAME}.pt"
    if not checkpoint.exists() or json.loads(config_path.read_text()) != TINY_CLIP_CONFIG:
        config_path.write_text(json.dumps(TINY_CLIP_CONFIG, indent=2))
        open_clip.add_model_config(str(folder))
        torch.manual_seed(seed)
        quiet = logging.getLogger().level
        logging.getLogger().setLevel(logging.ERROR)  # "no pretrained weights" is the point here
        try:
            model = open_clip.create_model(TINY_CLIP_NAME, pretrained=None)
        finally:
            logging.getLogger().setLevel(quiet)
        partial = checkpoint.with_suffix(".partial")
        torch.save(model.state_dict(), partial)
        partial.replace(checkpoint)  # atomic: a half-written checkpoint is never loaded
    return ClipModelSpec(model_name=TINY_CLIP_NAME, pretrained=str(checkpoint), config_dir=folder)

"""Which CLIP a model profile means. `paper`: ViT-B/32 with OpenAI weights (downloaded once by
open_clip on a machine that reaches the hub, or read from its cache); `tiny`: built locally."""

from pathlib import Path

from workers.vision.clip import ClipModelSpec

PROFILES = ("tiny", "paper")


def clip_spec(profile: str, models_dir: Path, model_name: str = "", pretrained: str = "") -> ClipModelSpec:
    """The spec for a profile; a project's own model name / pretrained tag or path wins."""
    if model_name:
        return ClipModelSpec(model_name=model_name, pretrained=pretrained or None)
    if profile == "tiny":
        from workers.vision.tiny import build_tiny_clip

        return build_tiny_clip(models_dir / "tiny" / "clip")
    if profile == "paper":
        return ClipModelSpec(model_name="ViT-B-32", pretrained="openai")
    raise ValueError(f"Unknown model profile {profile!r}; use one of {', '.join(PROFILES)}.")

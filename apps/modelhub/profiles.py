"""What the model profiles mean for each role (see README, "Model profiles")."""

from dataclasses import dataclass

PAPER_MODELS = {
    "detector": [
        ("qwen2.5-vl-3b", "Qwen/Qwen2.5-VL-3B-Instruct"),
        ("qwen2.5-vl-7b", "Qwen/Qwen2.5-VL-7B-Instruct"),
        ("qwen2.5-vl-32b", "Qwen/Qwen2.5-VL-32B-Instruct"),
    ],
    "captioner": [("internvl3-38b", "OpenGVLab/InternVL3-38B-hf")],
}
TINY_MODELS = {
    "detector": [("tiny-qwen2.5-vl", "tiny/qwen2_5_vl")],
    "captioner": [("tiny-internvl", "tiny/internvl")],
}


@dataclass(frozen=True)
class ProfileModel:
    role: str
    name: str
    model: str  # hub id, or (tiny) a folder under MODELS_DIR built on first use
    default: bool


def profile_models(profile: str) -> list[ProfileModel]:
    table = {"paper": PAPER_MODELS, "tiny": TINY_MODELS}.get(profile)
    if table is None:
        raise ValueError(f"Unknown model profile {profile!r}.")
    models = []
    for role, entries in table.items():
        default_index = 1 if role == "detector" and profile == "paper" else 0  # the paper's 7B detector
        for index, (name, model) in enumerate(entries):
            models.append(ProfileModel(role, name, model, index == default_index))
    return models

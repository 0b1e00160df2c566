"""The training run's contract with the app: exact resume, cooperative cancel, crash-safe checkpoints,
an adapter the detector loads, a merge that changes no answer, and the command-line entry point."""

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.assertions import assert_informative
from tests.workers.train.support import fast_config
from workers.train import CANCELLED, COMPLETED, SFTResult, TrainingCallbacks
from workers.train.checkpoint import LATEST, TRAINING_STATE, checkpoints_root, resolve_checkpoint
from workers.train.merge import merge_and_check
from workers.train.recipe import train_detector
from workers.train.run import main, write_run_file
from workers.vlm.backends import ModelSpec, TransformersBackend
from workers.vlm.prompts import detection_prompt

REPO = Path(__file__).resolve().parents[3]


def run(model, output_dir, small_set, callbacks=None, resume_from=None, **overrides) -> SFTResult:
    roster, train, validation = small_set
    config = fast_config(model, output_dir, **overrides)
    return train_detector(config, roster, train, validation, callbacks, resume_from)


def adapter_weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "adapter_model.safetensors")


def comparable(history) -> list:
    return [replace(row, seconds=0.0) for row in history]


def assert_same_run(result: SFTResult, reference: SFTResult) -> None:
    assert result.status == COMPLETED and result.steps_done == reference.steps_done
    weights, expected = adapter_weights(result.adapter_dir), adapter_weights(reference.adapter_dir)
    assert expected and weights.keys() == expected.keys()  # an adapter with no tensors would compare equal
    assert all(torch.equal(weights[name], expected[name]) for name in expected)
    assert reference.history and comparable(result.history) == comparable(reference.history)


def detector_spec(model, **overrides) -> ModelSpec:
    settings = dict(max_new_tokens=12, reference_max_pixels=56 * 56, target_max_pixels=112 * 64)
    return ModelSpec(name="tiny", model=str(model), **{**settings, **overrides})


@pytest.fixture(scope="module")
def straight(tiny_model, small_set, tmp_path_factory) -> SFTResult:
    """Three epochs without interruption: what every interrupted run must reproduce."""
    steps = []
    result = run(tiny_model, tmp_path_factory.mktemp("straight"), small_set, TrainingCallbacks(on_step=steps.append))
    assert [step.step for step in steps] == list(range(1, result.total_steps + 1))
    assert {step.total_steps for step in steps} == {9} and steps[-1].epoch == 3
    return result


def test_a_run_trains_validates_every_epoch_and_saves_an_adapter(straight, small_set):
    assert straight.status == COMPLETED and straight.epochs_completed == 3
    assert [row.epoch for row in straight.history] == [1, 2, 3]
    _, _, validation = small_set
    for row in straight.history:
        assert row.train_loss > 0 and row.val_loss > 0
        assert 0 <= row.sample_f1 <= 1 and 0 <= row.precision <= 1 and 0 <= row.recall <= 1 and row.mistakes >= 0
        assert set(row.predictions) == {example.key for example in validation}
    assert straight.history[-1].train_loss < straight.history[0].train_loss
    assert (straight.adapter_dir / "adapter_config.json").is_file()


def test_stopped_after_two_epochs_and_resumed_it_ends_exactly_like_the_uninterrupted_run(
    straight, tiny_model, small_set, tmp_path
):
    epochs = []
    callbacks = TrainingCallbacks(on_epoch=epochs.append, should_stop=lambda: len(epochs) == 2)
    stopped = run(tiny_model, tmp_path, small_set, callbacks)
    assert stopped.status == CANCELLED and stopped.epochs_completed == 2 and stopped.steps_done == 6
    assert stopped.adapter_dir is None and resolve_checkpoint(tmp_path) == stopped.checkpoint_dir

    resumed = run(tiny_model, tmp_path, small_set, resume_from=tmp_path)
    assert_same_run(resumed, straight)


def test_cancel_stops_within_one_step_and_leaves_a_checkpoint_the_detector_loads(
    straight, tiny_model, small_set, tmp_path
):
    steps = []
    callbacks = TrainingCallbacks(on_step=steps.append, should_stop=lambda: bool(steps))
    cancelled = run(tiny_model, tmp_path, small_set, callbacks)
    assert cancelled.status == CANCELLED and cancelled.steps_done == 1 == len(steps)

    roster, _, validation = small_set
    backend = TransformersBackend(detector_spec(tiny_model, adapter=str(cancelled.checkpoint_dir / "adapter")))
    assert hasattr(backend.model, "get_base_model")  # the adapter is applied, not silently skipped
    outputs = backend.generate([detection_prompt(roster, example.image_path) for example in validation])
    assert len(outputs) == len(validation) and all(output.error == "" for output in outputs)

    # resumed in the middle of an epoch, the run still ends exactly like the uninterrupted one
    assert_same_run(run(tiny_model, tmp_path, small_set, resume_from=cancelled.checkpoint_dir), straight)


def test_a_crash_while_saving_leaves_the_previous_checkpoint_in_charge(
    straight, tiny_model, small_set, tmp_path, monkeypatch
):
    real_save = torch.save
    saved_states = []

    def save_then_crash(obj, path, *args, **kwargs):
        if Path(path).name == TRAINING_STATE:
            saved_states.append(path)
            if len(saved_states) == 2:  # the checkpoint of epoch 2, half written
                raise OSError("No space left on device")
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_then_crash)
    with pytest.raises(OSError, match="No space left"):
        run(tiny_model, tmp_path, small_set)
    monkeypatch.setattr(torch, "save", real_save)

    root = checkpoints_root(tmp_path)
    survivor = resolve_checkpoint(tmp_path)
    assert (root / LATEST).read_text() == survivor.name == "step-0000003"  # epoch 1's
    assert (survivor / TRAINING_STATE).is_file() and (survivor / "adapter" / "adapter_model.safetensors").is_file()
    assert [p.name for p in root.iterdir() if p.name.startswith(".partial-")] == [".partial-step-0000006"]

    assert_same_run(run(tiny_model, tmp_path, small_set, resume_from=tmp_path), straight)
    assert not [p for p in root.iterdir() if p.name.startswith(".partial-")]  # the next save cleared it


def test_resuming_with_a_different_recipe_is_refused(straight, tiny_model, small_set, tmp_path):
    with pytest.raises(ValueError, match="learning_rate"):
        run(tiny_model, tmp_path, small_set, resume_from=straight.checkpoint_dir, learning_rate=1e-4)


def test_merged_model_answers_exactly_like_base_plus_adapter(varied_tiny_model, small_set, tmp_path):
    # On the stock tiny model every frame gets the same answer, so "identical" would compare one
    # constant string with itself: this run starts from weights whose answers vary by frame.
    roster, train, validation = small_set
    trained = run(varied_tiny_model, tmp_path / "run", small_set)
    frames = train + validation
    merged = tmp_path / "merged"
    check = merge_and_check(varied_tiny_model, trained.adapter_dir, merged, roster, frames, detector_spec(""))
    assert_informative(list(check.adapter_answers.values()))  # identical empty answers would prove nothing
    assert list(check.adapter_answers) == [frame.key for frame in frames]
    assert check.identical and check.differing_keys == []
    assert (merged / "config.json").is_file() and not (merged / "adapter_config.json").exists()
    prompts = [detection_prompt(roster, frame.image_path) for frame in frames]
    base = TransformersBackend(detector_spec(varied_tiny_model)).generate(prompts)
    assert [output.text for output in base] != list(check.adapter_answers.values()), "the adapter must matter"


def test_the_entry_point_runs_a_whole_run_in_one_process(tiny_model, small_set, tmp_path):
    roster, train, validation = small_set
    config = fast_config(tiny_model, tmp_path / "run", epochs=1)
    write_run_file(tmp_path / "run.json", config, roster, train, validation)
    command = [sys.executable, "-m", "workers.train.run", "--config", str(tmp_path / "run.json")]
    command += ["--events", str(tmp_path / "events.jsonl")]
    completed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-2000:]

    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert json.loads(completed.stdout.strip().splitlines()[-1]) == result
    assert result["status"] == COMPLETED and result["steps_done"] == result["total_steps"] == 3
    assert Path(result["adapter_dir"], "adapter_model.safetensors").is_file()
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [event["event"] for event in events] == ["step", "step", "step", "epoch", "result"]
    assert events[2]["step"] == events[2]["total_steps"] == 3
    assert {key: value for key, value in events[3].items() if key != "event"} == result["history"][-1]
    assert events[4] == {"event": "result", **result}


def test_the_entry_point_stops_when_the_stop_file_appears(tiny_model, small_set, tmp_path):
    roster, train, validation = small_set
    write_run_file(tmp_path / "run.json", fast_config(tiny_model, tmp_path / "run"), roster, train, validation)
    (tmp_path / "STOP").touch()
    assert main(["--config", str(tmp_path / "run.json"), "--stop-file", str(tmp_path / "STOP")]) == 0
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["status"] == CANCELLED and result["steps_done"] == 0
    assert Path(result["checkpoint_dir"], "adapter", "adapter_config.json").is_file()


def test_gradient_checkpointing_trains_on_full_prompts_to_the_same_losses(tiny_model, small_set, tmp_path):
    plain = run(tiny_model, tmp_path / "plain", small_set, epochs=1, dropout=0.0)
    checkpointed = run(
        tiny_model, tmp_path / "checkpointed", small_set, epochs=1, dropout=0.0, gradient_checkpointing=True
    )
    assert plain.history[0].train_loss > 0 and plain.history[0].val_loss > 0
    assert checkpointed.history[0].train_loss == pytest.approx(plain.history[0].train_loss, rel=1e-4)
    assert checkpointed.history[0].val_loss == pytest.approx(plain.history[0].val_loss, rel=1e-3)


def test_out_of_memory_turns_gradient_checkpointing_on_and_retries_the_step(
    tiny_model, small_set, tmp_path, monkeypatch
):
    from workers.train.modeling import AnswerLoss

    forward = AnswerLoss.forward
    failures = []

    def forward_once_out_of_memory(self, batch):
        if not failures:
            failures.append(batch)
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return forward(self, batch)

    monkeypatch.setattr(AnswerLoss, "forward", forward_once_out_of_memory)
    result = run(tiny_model, tmp_path, small_set, epochs=1)
    assert result.status == COMPLETED and result.steps_done == result.total_steps and len(failures) == 1
    state = torch.load(result.checkpoint_dir / TRAINING_STATE, weights_only=True)
    assert state["gradient_checkpointing"] is True


def test_validation_decodes_as_the_constrained_detector_does(tiny_model, small_set, tmp_path, monkeypatch):
    """A detector version with `constrained` gets validation answers held to the roster's grammar,
    as its detection runs decode: the fine-tuning table and Table 1 score the same kind of answer.
    The stock toy's free answers are gibberish, so the setting shows in the parse failures."""
    roster, train, validation = small_set
    specs = []
    loaded = TransformersBackend.from_loaded.__func__

    def spy(cls, spec, *loaded_parts):
        specs.append(spec)
        return loaded(cls, spec, *loaded_parts)

    monkeypatch.setattr(TransformersBackend, "from_loaded", classmethod(spy))
    free = run(tiny_model, tmp_path / "free", small_set, epochs=1)
    held = run(tiny_model, tmp_path / "held", small_set, epochs=1, constrained=True)
    assert [spec.constrained for spec in specs] == [False, True]
    assert free.history[-1].parse_failures == len(validation)
    assert held.history[-1].parse_failures == 0
    names = {card.name for card in roster}
    assert all(set(predicted) <= names for predicted in held.history[-1].predictions.values())

"""Checkpoints: round trip, atomic writes, refusal of damaged or foreign files, and exact resume."""

import json
import os
import pickle
from dataclasses import replace

import pytest
import torch

from rnntui.core import checkpoint, runs
from rnntui.util import files
from rnntui.core.checkpoint import CheckpointError
from rnntui.run import build_trainer, load_model, resume_trainer

from conftest import TWO_LAYERS, tiny_config as tiny


def tiny_config(corpus, **overrides):
    return tiny(corpus, **{**TWO_LAYERS, **overrides})


def losses(trainer):
    found = [e.loss for e in trainer.run() if e.type == "step"]
    trainer.close()
    return found


def test_round_trip_restores_weights_vocab_and_config(small_text, tmp_path):
    trainer = build_trainer(tiny_config(small_text, max_steps=5), tmp_path / "run")
    list(trainer.run())
    model, vocab, meta = load_model(tmp_path / "run")
    assert vocab == trainer.vocab
    assert meta["step"] == 5 and meta["config"]["n_hidden"] == 32
    for (name, a), (_, b) in zip(trainer.model.state_dict().items(), model.state_dict().items()):
        assert torch.equal(a, b), name


N, M = 13, 17  # the streams wrap after 21 steps here, so the resumed part crosses an epoch boundary


def resumed_losses(run_dir, total):
    trainer = resume_trainer(run_dir, max_steps=total)
    assert trainer.steps_done == N
    steps = [(e.step, e.loss) for e in trainer.run() if e.type == "step"]
    trainer.close()
    assert steps[0][0] == N + 1 and steps[-1][0] == total
    return [loss for _, loss in steps]


@pytest.mark.parametrize("optimizer", ["adamw", "rmsprop", "adagrad", "sgd"])
def test_resume_after_max_steps_is_bit_identical(small_text, tmp_path, optimizer):
    """Train N steps (--max-steps N), resume to N+M: the same per-step losses as N+M steps in one go."""
    config = tiny_config(small_text, optimizer=optimizer, momentum=0.9, schedule="constant")
    one_go = losses(build_trainer(replace(config, max_steps=N + M), tmp_path / "one"))
    first = build_trainer(replace(config, max_steps=N), tmp_path / "two")
    assert first.streams.per_epoch < N + M
    assert losses(first) + resumed_losses(tmp_path / "two", N + M) == one_go


def test_resume_after_a_stop_is_bit_identical_with_a_cosine_schedule(small_text, tmp_path):
    """Stop a run part-way (as Ctrl-C or the app's stop does: checkpoint, then end), then resume it."""
    config = tiny_config(small_text, max_steps=N + M, schedule="cosine")
    one_go = losses(build_trainer(config, tmp_path / "one"))
    first = build_trainer(config, tmp_path / "two")
    part1 = []
    while first.steps_done < N:
        part1 += [e.loss for e in first.step() if e.type == "step"]
    assert [e.type for e in first.stop(checkpoint=True)] == ["checkpoint", "done"]
    first.close()
    assert part1 + resumed_losses(tmp_path / "two", N + M) == one_go


def test_interrupted_write_keeps_the_previous_checkpoint(small_text, tmp_path, monkeypatch):
    trainer = build_trainer(tiny_config(small_text, max_steps=5), tmp_path / "run")
    list(trainer.run())
    ckpt_dir = tmp_path / "run" / "checkpoints"
    before = sorted(p.name for p in ckpt_dir.iterdir())
    real_replace = os.replace

    def crash_on_json(src, dst):
        if str(dst).endswith(".json"):
            raise KeyboardInterrupt  # killed between writing the tensors and the JSON that commits them
        return real_replace(src, dst)

    trainer.steps_done = 6
    monkeypatch.setattr(files.os, "replace", crash_on_json)
    with pytest.raises(KeyboardInterrupt):
        trainer.checkpoint()
    monkeypatch.setattr(files.os, "replace", real_replace)
    assert not list(ckpt_dir.glob("*.tmp")) and not list(ckpt_dir.glob(".*.tmp"))
    assert runs.resolve(tmp_path / "run").name == "step-00000005.json"
    assert checkpoint.load(tmp_path / "run").step == 5
    assert set(before) <= {p.name for p in ckpt_dir.iterdir()}


def test_write_interrupted_inside_the_tensor_file_leaves_nothing_under_its_name(tmp_path, monkeypatch):
    checkpoint.save(tmp_path, 1, {"w": torch.ones(3)}, {})

    monkeypatch.setattr(checkpoint, "serialize", lambda t: b"x" * 10)
    real_fsync = os.fsync
    monkeypatch.setattr(files.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        checkpoint.save(tmp_path, 2, {"w": torch.ones(3)}, {})
    monkeypatch.setattr(files.os, "fsync", real_fsync)
    assert not (tmp_path / "step-00000002.safetensors").exists()
    assert not list(tmp_path.glob(".*.tmp"))
    saved = checkpoint.load(tmp_path)
    assert saved.step == 1 and torch.equal(saved.tensors["w"], torch.ones(3))


def _saved(tmp_path):
    return checkpoint.save(tmp_path, 3, {"w": torch.arange(100.0)}, {"config": {}})


def test_truncated_tensor_file_is_detected(tmp_path):
    json_path = _saved(tmp_path)
    tensor_path = json_path.with_suffix(".safetensors")
    tensor_path.write_bytes(tensor_path.read_bytes()[:-40])
    with pytest.raises(CheckpointError, match="truncated or damaged"):
        checkpoint.load(json_path)


def test_corrupt_json_is_detected(tmp_path):
    json_path = _saved(tmp_path)
    json_path.write_text('{"format": "rnntui-checkpoint", "step": ')
    with pytest.raises(CheckpointError, match="damaged"):
        checkpoint.load(json_path)


def test_other_format_version_is_refused(tmp_path):
    json_path = _saved(tmp_path)
    meta = json.loads(json_path.read_text())
    json_path.write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(CheckpointError, match="format version 99"):
        checkpoint.load(json_path)


def test_pickle_files_are_never_loaded(tmp_path):
    pt = tmp_path / "model.pt"
    torch.save({"w": torch.ones(2)}, pt)
    pkl = tmp_path / "model.json"  # a pickle under an innocent name is still refused by its magic bytes
    pkl.write_bytes(pickle.dumps({"a": 1}))
    for path in (pt, pkl):
        with pytest.raises(CheckpointError, match="never loads"):
            checkpoint.load(path)


def test_pruning_keeps_the_last_k_and_the_best(small_text, tmp_path):
    trainer = build_trainer(tiny_config(small_text, max_steps=30, eval_every=3, keep_checkpoints=2), tmp_path / "run")
    list(trainer.run())
    ckpt_dir = tmp_path / "run" / "checkpoints"
    kept = sorted(p.name for p in ckpt_dir.glob("step-*.json"))
    best = json.loads((ckpt_dir / "best.json").read_text())["checkpoint"]
    assert kept[-2:] == ["step-00000027.json", "step-00000030.json"]
    assert best in kept and len(kept) <= 3
    assert len(list(ckpt_dir.glob("step-*.safetensors"))) == len(kept)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_checkpoint_saved_on_gpu_loads_on_cpu(small_text, tmp_path):
    list(build_trainer(tiny_config(small_text, max_steps=2, device="cuda"), tmp_path / "run").run())
    model, _, _ = load_model(tmp_path / "run", device="cpu")
    assert all(p.device.type == "cpu" for p in model.parameters())

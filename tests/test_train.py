"""The training loop: events, schedules, budgets, clipping, divergence, precision and the run's log."""

import json
import math

import pytest
import torch

from rnntui import events
from rnntui.core import checkpoint, device
from rnntui.core.config import LONG_BUDGET_S, PRESETS, TrainConfig, apply_preset, learning_rate
from rnntui.core.runs import RunLog, keeps_step
from rnntui.core.trainer import GRAD_FLOW_EVERY
from rnntui.run import build_trainer, resume_trainer

from conftest import TWO_LAYERS, tiny_config


def two_layer_config(corpus, **overrides):
    return tiny_config(corpus, **{**TWO_LAYERS, **overrides})


def test_events_in_order_and_loss_falls(small_text, tmp_path):
    trainer = build_trainer(two_layer_config(small_text, max_steps=60, eval_every=20, sample_every=30, dropout=0.0),
                            tmp_path / "run")
    got = list(trainer.run())
    kinds = [e.type for e in got]
    assert kinds[0] == "started" and kinds[-1] == "done"
    steps = [e for e in got if e.type == "step"]
    evals = [e for e in got if e.type == "eval"]
    samples = [e for e in got if e.type == "sample"]
    assert [e.step for e in evals] == [20, 40, 60] and [e.step for e in samples] == [30, 60]
    assert evals[-1].val_loss < evals[0].val_loss < math.log(len(trainer.vocab)) + 0.5
    assert sum(e.loss for e in steps[-10:]) < sum(e.loss for e in steps[:10])
    assert all(e.grad_norm > 0 and e.chars_per_sec > 0 for e in steps)
    assert samples[0].val_loss == evals[0].val_loss  # the sample at step 30 carries the validation of step 20
    assert got[-1].reason == "max_steps" and got[-1].best_val_loss == min(e.val_loss for e in evals)


def test_the_stepped_trainer_logs_every_event_it_returns(small_text, tmp_path):
    trainer = build_trainer(tiny_config(small_text, max_steps=8, eval_every=4, sample_every=100), tmp_path / "run")
    produced = trainer.start() + trainer.step() + trainer.evaluate() + trainer.sample(seed=1) + trainer.warn("w")
    produced += trainer.stop(checkpoint=True)
    assert [e.type for e in produced] == ["started", "step", "eval", "sample", "warning", "checkpoint", "done"]
    assert trainer.finished == "stopped" and trainer.step() == [] and trainer.stop() == []
    trainer.close()
    logged = [json.loads(line)["type"] for line in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    assert logged == [e.type for e in produced]
    samples = (tmp_path / "run" / "samples.jsonl").read_text().splitlines()
    assert len(samples) == 1 and json.loads(samples[0])["text"] == produced[3].text


def test_grad_flow_events_split_the_pre_clip_norm_by_layer(small_text, tmp_path):
    trainer = build_trainer(two_layer_config(small_text, n_layer=3, max_steps=2 * GRAD_FLOW_EVERY, clip=0.01),
                            tmp_path / "run")
    got = list(trainer.run())
    trainer.close()
    flows = [e for e in got if e.type == "grad_flow"]
    norm_at = {e.step: e.grad_norm for e in got if e.type == "step"}
    assert [e.step for e in flows] == [GRAD_FLOW_EVERY, 2 * GRAD_FLOW_EVERY]
    for flow in flows:
        assert list(flow.norms) == ["embedding", "layer 1", "layer 2", "layer 3", "head"]
        assert all(n > 0 for n in flow.norms.values())
        # the parts make up the whole gradient, measured before clipping to 0.01
        assert math.sqrt(sum(n * n for n in flow.norms.values())) == pytest.approx(norm_at[flow.step], rel=1e-4)
        assert norm_at[flow.step] > 0.01
    logged = (tmp_path / "run" / "events.jsonl").read_text()
    assert logged.count('"type": "grad_flow"') == 2


def test_max_time_budget_ends_at_the_first_step_past_it(small_text, tmp_path):
    trainer = build_trainer(tiny_config(small_text, max_time=0.3, eval_every=10_000), tmp_path / "run")
    got = list(trainer.run())
    steps, done = [e for e in got if e.type == "step"], got[-1]
    assert done.reason == "max_time" and done.elapsed >= 0.3
    assert all(e.elapsed < 0.3 for e in steps[:-1]) and steps[-1].elapsed == done.elapsed


def test_learning_rate_schedules():
    cosine = TrainConfig(lr=1.0, schedule="cosine", warmup_steps=10, min_lr_ratio=0.1)
    assert learning_rate(cosine, 0, 0, 0.0) == pytest.approx(0.1)
    assert learning_rate(cosine, 9, 0, 0.01) == pytest.approx(1.0)
    assert learning_rate(cosine, 50, 0, 0.5) == pytest.approx(0.55)
    assert learning_rate(cosine, 100, 0, 1.0) == pytest.approx(0.1)
    decay = TrainConfig(lr=1.0, schedule="decay", decay_rate=0.5, decay_after=2)
    assert [learning_rate(decay, 0, e, None) for e in (0.5, 1.9, 2.0, 3.1, 4.0)] == [1, 1, 0.5, 0.25, 0.125]
    assert learning_rate(TrainConfig(lr=0.3), 1000, 5, 0.9) == 0.3


def test_clipping_by_value_and_by_norm_log_the_pre_clip_norm(small_text, tmp_path):
    for mode in ("value", "norm"):
        trainer = build_trainer(tiny_config(small_text, max_steps=1, clip=1e-4, clip_mode=mode), tmp_path / mode)
        loss, norm, _ = trainer.train_step()
        assert norm > 1e-3  # the logged norm is the one before clipping
        grads = [p.grad for p in trainer.model.parameters() if p.grad is not None]
        if mode == "norm":
            assert torch.nn.utils.get_total_norm(grads) <= 1e-4 * 1.01
        else:
            assert max(g.abs().max().item() for g in grads) <= 1e-4


def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(small_text, tmp_path):
    trainer = build_trainer(tiny_config(small_text, max_steps=50, eval_every=5, sample_every=5), tmp_path / "run")
    got = []
    for event in trainer.run():
        got.append(event)
        if event.type == "sample" and event.step == 10:
            with torch.no_grad():
                trainer.model.head.bias[0] = float("nan")
    trainer.close()
    error, done = got[-2:]
    assert error.type == "error" and "became nan at step 11" in error.message and "step-00000010" in error.message
    assert done.type == "done" and done.reason == "error" and done.step == 10
    log = (tmp_path / "run" / "events.jsonl").read_text()
    assert '"type": "error"' in log and '"reason": "error"' in log
    saved = checkpoint.load(tmp_path / "run")
    assert saved.step == 10 and all(torch.isfinite(t).all() for k, t in saved.tensors.items() if k.startswith("model."))


def test_every_preset_is_valid():
    for name in PRESETS:
        config = apply_preset(name)
        assert config.preset == name
    mcr = apply_preset("min-char-rnn")
    assert (mcr.cell, mcr.n_layer, mcr.n_hidden, mcr.seq_len, mcr.batch_size, mcr.optimizer, mcr.lr,
            mcr.clip_mode, mcr.clip) == ("rnn", 1, 100, 25, 1, "adagrad", 0.1, "value", 5.0)
    cr = apply_preset("char-rnn")
    assert (cr.n_layer, cr.n_hidden, cr.seq_len, cr.batch_size, cr.optimizer, cr.lr, cr.alpha, cr.decay_rate,
            cr.decay_after) == (2, 128, 50, 50, "rmsprop", 2e-3, 0.95, 0.97, 10)


def test_default_preset_grows_with_a_long_time_budget():
    short, unbounded = apply_preset("default", max_time=60), apply_preset("default")
    assert (short.n_hidden, short.dropout) == (unbounded.n_hidden, unbounded.dropout) == (256, 0.0)
    long = apply_preset("default", max_time=LONG_BUDGET_S)
    assert (long.n_hidden, long.dropout, long.lr) == (512, 0.1, 5e-3) and long.cell == short.cell
    chosen = apply_preset("default", max_time=600, n_hidden=128, lr=1e-3)  # options given still win
    assert (chosen.n_hidden, chosen.lr, chosen.dropout) == (128, 1e-3, 0.1)
    assert apply_preset("char-rnn", max_time=600).n_hidden == 128  # only the default preset scales


def test_char_rnn_preset_matches_char_rnn_parameter_count(shakespeare, tmp_path):
    trainer = build_trainer(apply_preset("char-rnn", corpus=str(shakespeare), n_embd=65, max_steps=1), tmp_path / "r")
    # char-rnn feeds one-hot vectors; with an embedding of size 65 the cells and head have exactly char-rnn's
    # 240,321 weights and biases (its i2h and h2h layers both have biases, like PyTorch's b_ih and b_hh), plus
    # the 65x65 embedding table.
    assert trainer.n_params == 240_321 + 65 * 65


def test_eval_chars_validates_on_a_prefix_of_the_split(small_text, tmp_path):
    import torch.nn.functional as F

    trainer = build_trainer(tiny_config(small_text, max_steps=1, eval_chars=200), tmp_path / "run")
    trainer.model.eval()
    x = torch.from_numpy(trainer.dataset.val[:201].astype("int64"))[None]
    with torch.no_grad():
        logits, _ = trainer.model(x[:, :-1], trainer.model.initial_state(1))
    expected = F.cross_entropy(logits[0], x[0, 1:]).item()
    assert trainer.validation_loss() == pytest.approx(expected, abs=1e-5)
    trainer.config.eval_chars = None
    assert trainer.validation_loss() != pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("flags, precision, expected", [
    ({"avx2"}, "auto", None), ({"avx512_bf16"}, "auto", torch.bfloat16), ({"amx_bf16"}, "auto", torch.bfloat16),
    ({"avx2"}, "bf16", torch.bfloat16), ({"amx_bf16"}, "fp32", None),
])
def test_precision_auto_uses_bf16_only_where_the_cpu_runs_it_natively(monkeypatch, flags, precision, expected):
    monkeypatch.setattr(device, "cpu_flags", lambda: flags)
    assert device.autocast_dtype(precision, torch.device("cpu")) is expected


def test_config_from_json_leaves_out_keys_it_does_not_know():
    saved = {**TrainConfig(n_hidden=48, betas=(0.8, 0.9)).to_json(), "a_newer_option": 3, "another": [1]}
    config = TrainConfig.from_json(saved)
    assert config.n_hidden == 48 and config.betas == (0.8, 0.9) and not hasattr(config, "a_newer_option")


def test_run_log_thins_step_events_as_the_run_grows(tmp_path):
    assert [s for s in range(1, 1001) if keeps_step(s)] == list(range(1, 1000)) + [1000]
    assert [s for s in (1000, 1005, 1010, 9990, 10000, 10010, 10100) if keeps_step(s)] == [1000, 1010, 9990, 10000,
                                                                                          10100]
    log = RunLog(tmp_path)
    for step in range(995, 1031):
        log.write(events.Step(step, 0.0, 1.0, 1e-3, 1.0, 1.0, 1.0))
    log.write(events.Eval(1025, 1.0, 1.4, 1.0, 1.0))
    log.close()
    steps = [json.loads(line)["step"] for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert steps == [995, 996, 997, 998, 999, 1000, 1010, 1020, 1030, 1025]


def test_resume_drops_what_a_crashed_run_logged_past_its_checkpoint(small_text, tmp_path):
    run_dir = tmp_path / "run"
    trainer = build_trainer(tiny_config(small_text, max_steps=10, eval_every=5, sample_every=5), run_dir)
    list(trainer.run())
    trainer.close()
    (run_dir / "checkpoints" / "step-00000010.json").unlink()  # as if the run died between step 5 and 10's save
    logged = lambda name: [json.loads(line).get("step") for line in (run_dir / name).read_text().splitlines()]  # noqa: E731
    assert max(logged("events.jsonl")) == 10 and max(logged("samples.jsonl")) == 10
    resumed = resume_trainer(run_dir, max_steps=6)
    resumed.close()
    assert max(logged("events.jsonl")) == 5 and logged("samples.jsonl") == [5]

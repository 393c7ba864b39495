"""The training loop: events, schedules, clipping, divergence."""

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rnntui.core import checkpoint
from rnntui.core.train import GRAD_FLOW_EVERY, LONG_BUDGET_S, PRESETS, TrainConfig, Trainer, apply_preset, learning_rate

from test_checkpoint import tiny_config


def test_events_in_order_and_loss_falls(small_text, tmp_path):
    trainer = Trainer(tiny_config(small_text, max_steps=60, eval_every=20, sample_every=30, dropout=0.0),
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
    assert samples[0].val_loss == evals[0].val_loss or samples[0].step == 30
    assert got[-1].reason == "max_steps" and got[-1].best_val_loss == min(e.val_loss for e in evals)


def test_grad_flow_events_split_the_pre_clip_norm_by_layer(small_text, tmp_path):
    trainer = Trainer(tiny_config(small_text, n_layer=3, max_steps=2 * GRAD_FLOW_EVERY, clip=0.01),
                      tmp_path / "run")
    got = list(trainer.run())
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


def test_max_time_budget(small_text, tmp_path):
    trainer = Trainer(tiny_config(small_text, max_time=0.5, eval_every=10_000), tmp_path / "run")
    done = list(trainer.run())[-1]
    assert done.reason == "max_time" and 0.5 <= done.elapsed < 5


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
        trainer = Trainer(tiny_config(small_text, max_steps=1, clip=1e-4, clip_mode=mode), tmp_path / mode)
        loss, norm, _ = trainer.train_step()
        assert norm > 1e-3  # the logged norm is the one before clipping
    grads = [p.grad for p in trainer.model.parameters() if p.grad is not None]
    assert torch.nn.utils.get_total_norm(grads) <= 1e-4 * 1.01


def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(small_text, tmp_path):
    trainer = Trainer(tiny_config(small_text, max_steps=50, eval_every=5), tmp_path / "run")
    stream = trainer.run()
    for event in stream:
        if event.type == "sample" and event.step == 10:
            with torch.no_grad():
                trainer.model.head.bias[0] = float("nan")
    errors = [e for e in [*stream]]  # nothing left: the loop already ended
    assert errors == []
    log = (tmp_path / "run" / "events.jsonl").read_text()
    assert '"type": "error"' in log and "became nan at step 11" in log and "step-00000010" in log
    assert '"reason": "error"' in log
    tensors, meta = checkpoint.load(tmp_path / "run")
    assert meta["step"] == 10 and all(torch.isfinite(t).all() for k, t in tensors.items() if k.startswith("model."))


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
    trainer = Trainer(apply_preset("char-rnn", corpus=str(shakespeare), n_embd=65, max_steps=1), tmp_path / "r")
    # char-rnn feeds one-hot vectors; with an embedding of size 65 the cells and head have exactly char-rnn's
    # 240,321 weights and biases (its i2h and h2h layers both have biases, like PyTorch's b_ih and b_hh), plus
    # the 65x65 embedding table.
    assert trainer.n_params == 240_321 + 65 * 65


def test_core_never_imports_the_ui():
    modules = [f"rnntui.{package}.{p.stem}" for package in ("core", "corpora")
               for p in Path("rnntui", package).glob("*.py") if p.stem != "__init__"] + ["rnntui.corpora"]
    probe = (f"import sys, importlib; [importlib.import_module(m) for m in {modules!r}]; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parents[1]).stdout
    assert out.strip() == "[]"
    lint = Path(sys.executable).with_name("lint-imports")
    if lint.exists():
        result = subprocess.run([str(lint)], capture_output=True, text=True, cwd=Path(__file__).parents[1])
        assert result.returncode == 0, result.stdout


def test_eval_chars_validates_on_a_prefix_of_the_split(small_text, tmp_path):
    import torch.nn.functional as F

    trainer = Trainer(tiny_config(small_text, max_steps=1, eval_chars=200), tmp_path / "run")
    trainer.model.eval()
    x = torch.from_numpy(trainer.dataset.val[:201].astype("int64"))[None]
    with torch.no_grad():
        logits, _ = trainer.model(x[:, :-1], trainer.model.initial_state(1))
    expected = F.cross_entropy(logits[0], x[0, 1:]).item()
    assert trainer.evaluate() == pytest.approx(expected, abs=1e-5)
    trainer.config.eval_chars = None
    assert trainer.evaluate() != pytest.approx(expected, abs=1e-5)

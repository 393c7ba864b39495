"""The Trainer: one training run, stepped by its owner, and the only producer of its events and writer of its files.

Its owner (``rnntui train``, the engine's run process, a test) builds it with ``rnntui.run`` and then calls:
``start()`` for the Started event, ``step()`` for one optimizer step and what is scheduled after it (an
evaluation with a checkpoint, a sample, and, once the budget is spent or the run fails, Done), and, whenever it
likes, ``evaluate()``, ``sample()``, ``checkpoint()``, ``warn()``, ``stop()`` and ``generate()``. Each returns the
events it produced, already written to the run's log. ``close()`` closes the log. ``run()`` does the whole loop.
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from rnntui import __version__, events
from rnntui.core import checkpoint, runs
from rnntui.core.cells import count_parameters
from rnntui.core.config import TrainConfig, budget_progress, budget_spent, learning_rate
from rnntui.core.data import Dataset, Streams, eval_chunks
from rnntui.core.device import autocast_dtype, pick_device
from rnntui.core.model import CharModel, detach
from rnntui.core.decode import prepare_prompt
from rnntui.core.sampling import check_sampling, generate
from rnntui.util.files import write_json
from rnntui.util.units import bits

GRAD_FLOW_EVERY = 10  # steps between GradFlow events (per-layer gradient norms)

OPTIMIZERS = {
    "adamw": lambda p, c: torch.optim.AdamW(p, lr=c.lr, betas=c.betas, weight_decay=c.weight_decay),
    "adam": lambda p, c: torch.optim.Adam(p, lr=c.lr, betas=c.betas, weight_decay=c.weight_decay),
    "rmsprop": lambda p, c: torch.optim.RMSprop(p, lr=c.lr, alpha=c.alpha, weight_decay=c.weight_decay),
    "adagrad": lambda p, c: torch.optim.Adagrad(p, lr=c.lr, weight_decay=c.weight_decay),
    "sgd": lambda p, c: torch.optim.SGD(p, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay),
}


@dataclass(frozen=True)
class CellOrigin:
    """Where the run's cell comes from, for messages (``label``) and for the checkpoint (plugin and version)."""

    label: str
    plugin: str = ""
    plugin_version: str = ""


class Trainer:
    def __init__(self, config: TrainConfig, model: CharModel, dataset: Dataset, run_dir: Path,
                 origin: CellOrigin | None = None, *, resume_step: int | None = None):
        """A new run (``resume_step`` None: writes config.json) or, through ``resume``, a continued one."""
        self.config = c = config
        self.dataset, self.vocab, self.corpus_name = dataset, dataset.vocab, dataset.name
        self.origin = origin or CellOrigin(f"cell {c.cell!r}", "", "")
        self.device = pick_device(c.device)
        self.model = model.to(self.device)
        self.n_params = count_parameters(model)
        self.amp_dtype = autocast_dtype(c.precision, self.device)
        self.optimizer = OPTIMIZERS[c.optimizer](model.parameters(), c)
        self.streams = Streams(dataset.train, c.batch_size, c.seq_len)
        self.states = model.initial_state(c.batch_size)
        self.steps_done = 0
        self.train_time = 0.0  # seconds spent in training steps, summed over resumes
        self.best_val_loss = math.inf  # the lowest validation loss of any evaluation
        self.best_checkpoint_val = math.inf  # ... and of a checkpoint (best.json points at it)
        self.last_val_loss: float | None = None
        self.last_checkpoint_step: int | None = None
        self.grad_flow: dict[str, float] = {}
        self.seconds_per_step: float | None = None
        self.finished: str | None = None  # why the run is over: max_steps, max_time, stopped, error
        self.resumed = resume_step is not None
        self._started: events.Started | None = None
        self.run_dir = Path(run_dir)
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if not self.resumed:
            write_json(self.run_dir / "config.json", {
                "config": c.to_json(), "corpus": self.corpus_name, "vocab": "".join(self.vocab.chars),
                "n_params": self.n_params, "created": time.strftime("%Y-%m-%d %H:%M:%S"), "rnntui": __version__})
        self.log = runs.RunLog(self.run_dir, resume_step)

    @classmethod
    def resume(cls, saved: checkpoint.Saved, config: TrainConfig, model: CharModel, dataset: Dataset,
               origin: CellOrigin | None = None) -> Trainer:
        """Continue the run of checkpoint ``saved`` exactly: weights, optimizer, RNG, carried states, step and
        training time as they were, so the losses that follow equal those of a run that never stopped."""
        trainer = cls(config, model, dataset, saved.run_dir, origin, resume_step=saved.step)
        meta, tensors = saved.meta, saved.tensors
        checkpoint.load_weights(trainer.model, tensors, saved.path)
        checkpoint.load_optimizer(trainer.optimizer, tensors, meta["optimizer"], trainer.device)
        checkpoint.restore_rng(tensors, trainer.device)
        trainer.states = checkpoint.states_from(tensors, config.n_layer, trainer.device)
        trainer.steps_done = trainer.last_checkpoint_step = saved.step
        trainer.train_time = meta["train_time"]
        trainer.best_val_loss = meta["best_val_loss"] if meta["best_val_loss"] is not None else math.inf
        best = runs.best_pointer(trainer.run_dir)
        trainer.best_checkpoint_val = best["val_loss"] if best and best.get("val_loss") is not None else math.inf
        trainer.last_val_loss = meta.get("val_loss")
        return trainer

    # -- the events it produces, each written to the run's log ------------------------------------------------

    def _emit(self, *produced: events.Event) -> list[events.Event]:
        for event in produced:
            self.log.write(event)
        return list(produced)

    def start(self) -> list[events.Event]:
        """The Started event (once)."""
        if self._started is not None:
            return []
        c = self.config
        self._started = events.Started(
            str(self.run_dir), self.steps_done, self.n_params, str(self.device), self.corpus_name, c.cell,
            len(self.dataset.train), len(self.dataset.val), len(self.vocab), self.streams.per_epoch,
            c.max_steps, c.max_time, self.resumed)
        self.model.train()
        return self._emit(self._started)

    def step(self) -> list[events.Event]:
        """One optimizer step and what is due after it. A failure (NaN, a plugin cell that raises) ends the run
        with an Error and writes no checkpoint of the broken model."""
        if self.finished:
            return []
        started = self.start()
        try:  # the step, its evaluation, checkpoint and sample; emitted together, so a failure leaves no half
            produced = self._train_step_events()
            over = budget_spent(self.config.max_steps, self.config.max_time, self.steps_done, self.train_time)
            if self.steps_done % self.config.eval_every == 0 or over:
                produced += self._evaluate() + self._checkpoint()
            if self.steps_done % self.config.sample_every == 0 or over:
                produced += self._sample()
        except FloatingPointError as e:
            kept = runs.checkpoint_files(self.run_dir)
            kept_note = f"the last good checkpoint ({kept[-1].name}) is kept; " if kept else ""
            return started + self._fail(f"{e} ({self.origin.label}): training stopped; {kept_note}"
                                        "lower --lr or set --clip (e.g. --clip 1)")
        except Exception as e:  # a plugin cell that raises: report it with its traceback and stop cleanly
            return started + self._fail(f"step {self.steps_done + 1} failed in {self.origin.label}: "
                                        f"{e.__class__.__name__}: {e}", traceback.format_exc())
        return started + self._emit(*produced) + (self._done(over) if over else [])

    def _fail(self, message: str, tb: str | None = None) -> list[events.Event]:
        return self._emit(events.Error(message, self.steps_done + 1, tb)) + self._done("error")

    def _train_step_events(self) -> list[events.Event]:
        started = time.perf_counter()
        loss, norm, lr = self.train_step()
        dt = time.perf_counter() - started
        self.train_time += dt
        self.seconds_per_step = dt if self.seconds_per_step is None else 0.9 * self.seconds_per_step + 0.1 * dt
        c, n = self.config, self.steps_done
        produced: list[events.Event] = [events.Step(n, n / self.streams.per_epoch, loss, lr, norm,
                                                    c.batch_size * c.seq_len / dt, self.train_time, self._eta())]
        if n % GRAD_FLOW_EVERY == 0:
            produced.append(events.GradFlow(n, self.grad_flow))
        return produced

    def evaluate(self) -> list[events.Event]:
        """Validate now: an Eval event (none when the validation split is too short)."""
        return self._emit(*self._evaluate())

    def sample(self, seed: int | None = None) -> list[events.Event]:
        """A Sample of the configured length and temperature from the current weights."""
        return self._emit(*self._sample(seed))

    def checkpoint(self) -> list[events.Event]:
        return self._emit(*self._checkpoint())

    def warn(self, message: str) -> list[events.Event]:
        return self._emit(events.RunWarning(message, self.steps_done))

    def stop(self, checkpoint: bool = True) -> list[events.Event]:
        """End the run here (Done "stopped"), with a final checkpoint unless one is already at this step."""
        if self.finished:
            return []
        produced: list[events.Event] = []
        if checkpoint and self.steps_done != self.last_checkpoint_step:
            try:
                produced += self.checkpoint()
            except Exception as e:
                produced += self._emit(events.Error(f"the final checkpoint failed: {e.__class__.__name__}: {e}",
                                                    self.steps_done, traceback.format_exc()))
        return produced + self._done("stopped")

    def close(self) -> None:
        self.log.close()

    def run(self) -> Iterator[events.Event]:
        """Start, step until the run is over, and yield every event (headless training)."""
        yield from self.start()
        while not self.finished:
            yield from self.step()

    # -- training --------------------------------------------------------------------------------------------

    def _eta(self) -> float | None:
        c, left = self.config, []
        if c.max_steps:
            left.append((c.max_steps - self.steps_done) * (self.seconds_per_step or 0.0))
        if c.max_time:
            left.append(c.max_time - self.train_time)
        return max(0.0, min(left)) if left else None

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                              enabled=self.amp_dtype is not None)

    def train_step(self) -> tuple[float, float, float]:
        """One optimizer step -> (loss in nats/char, pre-clip gradient norm, learning rate)."""
        c, model = self.config, self.model
        x, y, reset = self.streams.batch(self.steps_done)
        x, y = x.to(self.device), y.to(self.device)
        if reset:
            self.states = model.initial_state(c.batch_size)
        progress = budget_progress(c.max_steps, c.max_time, self.steps_done, self.train_time)
        lr = learning_rate(c, self.steps_done, self.steps_done / self.streams.per_epoch, progress)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with self._autocast():
            logits, states = model(x, self.states)
        loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            raise FloatingPointError(f"the loss became {loss_value} at step {self.steps_done + 1}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if (self.steps_done + 1) % GRAD_FLOW_EVERY == 0:
            self.grad_flow = model.grad_norms()  # before clipping, which scales every part alike
        params = [p for p in model.parameters() if p.grad is not None]
        if c.clip and c.clip_mode == "norm":
            norm = torch.nn.utils.clip_grad_norm_(params, c.clip)
        else:
            norm = torch.nn.utils.get_total_norm([p.grad for p in params])
            if c.clip:
                torch.nn.utils.clip_grad_value_(params, c.clip)
        norm_value = norm.item()
        if not math.isfinite(norm_value):
            raise FloatingPointError(f"the gradient norm became {norm_value} at step {self.steps_done + 1}")
        self.optimizer.step()
        self.states = detach(states)
        self.steps_done += 1
        return loss_value, norm_value, lr

    @torch.no_grad()
    def validation_loss(self) -> float | None:
        """Mean cross-entropy in nats per character over the validation split (its first ``eval_chars``)."""
        if len(self.dataset.val) < 2:
            return None
        was_training = self.model.training
        self.model.eval()
        total, count, states = 0.0, 0, None
        val = self.dataset.val if self.config.eval_chars is None else self.dataset.val[: self.config.eval_chars + 1]
        for x, y, reset in eval_chunks(val, seq_len=max(self.config.seq_len, 128)):
            x, y = x.to(self.device), y.to(self.device)
            if reset or states is None:
                states = self.model.initial_state(x.shape[0])
            with self._autocast():
                logits, states = self.model(x, states)
            total += F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction="sum").item()
            count += y.numel()
        self.model.train(was_training)
        return total / count

    def _evaluate(self) -> list[events.Event]:
        val = self.validation_loss()
        if val is None:
            return []
        if not math.isfinite(val):
            raise FloatingPointError(f"the validation loss became {val} at step {self.steps_done}")
        self.last_val_loss = val
        self.best_val_loss = min(self.best_val_loss, val)
        return [events.Eval(self.steps_done, val, bits(val), self.best_val_loss, self.train_time)]

    def _checkpoint(self) -> list[events.Event]:
        c = self.config
        optim_tensors, optim_meta = checkpoint.optimizer_tensors(self.optimizer)
        meta = {
            "config": c.to_json(), "vocab": list(self.vocab.chars), "corpus": self.corpus_name,
            "best_val_loss": None if math.isinf(self.best_val_loss) else self.best_val_loss,
            "val_loss": self.last_val_loss, "train_time": self.train_time, "optimizer": optim_meta,
            "data_position": self.steps_done % self.streams.per_epoch, "state_policy": "carry, reset when streams wrap",
            "n_params": self.n_params, "rnntui": __version__, "cell": c.cell, "cell_plugin": self.origin.plugin,
            "cell_plugin_version": self.origin.plugin_version,
        }
        tensors = {**checkpoint.model_tensors(self.model), **optim_tensors, **checkpoint.rng_tensors(self.device),
                   **checkpoint.state_tensors(self.states)}
        path = checkpoint.save(self.ckpt_dir, self.steps_done, tensors, meta)
        self.last_checkpoint_step = self.steps_done
        val = self.last_val_loss
        best = val is not None and val <= self.best_checkpoint_val
        if best:
            self.best_checkpoint_val = val
            write_json(self.ckpt_dir / "best.json", {"checkpoint": path.name, "step": self.steps_done, "val_loss": val})
        pointer = runs.best_pointer(self.run_dir)
        runs.prune(self.ckpt_dir, c.keep_checkpoints, {pointer["checkpoint"]} if pointer else set())
        return [events.Checkpoint(self.steps_done, str(path), best, val)]

    def _sample(self, seed: int | None = None) -> list[events.Event]:
        c = self.config
        text = "".join(self.generate("", c.sample_length, c.sample_temperature,
                                     seed=c.seed + self.steps_done if seed is None else seed))
        return [events.Sample(self.steps_done, text, self.train_time, self.last_val_loss, c.sample_temperature)]

    def _done(self, reason: str) -> list[events.Event]:
        self.finished = reason
        best = None if math.isinf(self.best_val_loss) else self.best_val_loss
        return self._emit(events.Done(self.steps_done, reason, best, self.train_time))

    # -- generation from the current weights ---------------------------------------------------------------------

    def prepare_prompt(self, prompt: str, skip_unknown: bool = True) -> tuple[str, list[str]]:
        """The prompt with the characters the model never saw dropped (or refused), and those characters."""
        return prepare_prompt(self.vocab, prompt, skip_unknown=skip_unknown)

    def generate(self, prompt: str = "", length: int | None = 200, temperature: float = 0.8,
                 top_k: int | None = None, top_p: float | None = None, seed: int | None = None) -> Iterator[str]:
        """Characters continuing ``prompt`` (of known characters only) from the weights as they are at each one."""
        check_sampling(temperature, top_k, top_p)
        return generate(self.model, self.vocab, prompt, length, temperature, top_k, top_p, seed)

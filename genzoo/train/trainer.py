"""The one trainer: runs any architecture's phases on whatever Accelerate provides (CPU, GPUs, nodes).

Per step, for each phase the architecture declares: only that phase's parameters require gradients, its loss is
back-propagated (split into `grad_accumulation` micro-batches), gradients are averaged over processes, and its own
optimiser steps. Gradients are all-reduced by hand in one flat buffer per phase rather than through DDP, because
DDP assumes one forward per step through one wrapper, while adversarial architectures run several phases over
different parameter subsets per batch (distributed.py). The optimisers are built in optim.py, what the run prints
in console.py, signal handling in stopping.py, threads and trackers in environment.py.
"""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path

import torch

from genzoo.core.capabilities import FitsBeforeExport, can
from genzoo.core.errors import GenzooError
from genzoo.core.recipe import Recipe, differences, save_recipe
from genzoo.datasets.base import to_unit_float
from genzoo.train import distributed, environment
from genzoo.train.batches import EpochBatches, batch_stream, check_batch_sizes
from genzoo.train.checkpoint import Checkpoints, optimizer_from_tensors, set_rng_state
from genzoo.train.console import RunConsole, start_line
from genzoo.train.ema import EMA
from genzoo.train.growth import blend_reals, growth_schedule
from genzoo.train.metrics_log import append_record, truncate_after
from genzoo.train.optim import build_optimizers, check_phase_names
from genzoo.train.periodic_eval import eval_due, measure_and_keep_best
from genzoo.train.stopping import StopSignals


class NonFiniteLoss(GenzooError):
    pass


class Trainer:
    """Trains one recipe into its run folder (`fit`), resuming from the folder's latest checkpoint.

    Its state, all set here and filled in by `_setup` (before any step) unless said otherwise:
      recipe, spec (recipe.train), run_dir, dataset (given in Python, else None), console (what it prints)
      acc, rank, world: the Accelerator, this process's index and the number of processes
      threads, threads_why: this process's CPU threads and where the number came from
      data: the training split; model: the architecture (with its prior); ema: its EMA (None without)
      phases: the architecture's Phases; hyper (phase -> lr, betas, weight_decay), base_lr (phase -> lr before a
        growth level's table), params (phase -> its parameters), optimizers (optimiser key -> optimiser),
        all_params: every parameter of the model
      growth: the progressive-growing schedule (None without); level: its current level (set per step)
      batches, batch_size, level_data: the batch order, global batch and images of the current level (or run)
      total_steps; step, epoch, batch_in_epoch: where training is (restored on resume)
      best: the best periodic metric so far (train.eval), checkpoints: the run's checkpoint folder
      stop: the signals this process received; stopping: agreed by every process, stop after this step
    """

    def __init__(self, recipe: Recipe, console=None, dataset=None):
        """`dataset`: a genzoo ImageDataset (or any object with __len__, __getitems__ and image_shape giving uint8
        batches) to train on instead of the recipe's data section, from Python (README: the Python API)."""
        self.recipe, self.spec, self.run_dir, self.dataset = recipe, recipe.train, recipe.run_dir, dataset
        self.console = RunConsole(console)
        self.acc, self.rank, self.world, self.threads, self.threads_why = None, 0, 1, None, None
        self.data = self.model = self.ema = None
        self.phases, self.hyper, self.base_lr, self.params, self.optimizers, self.all_params = [], {}, {}, {}, {}, []
        self.growth = self.level = None
        self.batches, self.batch_size, self.level_data = None, None, None
        self.total_steps, self.step, self.epoch, self.batch_in_epoch = None, 0, 0, 0
        self.best, self.checkpoints = None, None
        self.stop = StopSignals(self.console.say)
        self.stopping = False

    # -- setup ------------------------------------------------------------------------------------------------
    def _setup(self):
        from accelerate.utils import set_seed

        from genzoo.modelfile.folder import create_model

        spec, recipe = self.spec, self.recipe
        environment.check_trackers(spec.log_with)
        if spec.mixed_precision is None:  # a resumed run keeps the precision it was started with
            spec.mixed_precision = environment.saved_train_key(self.run_dir, "mixed_precision")
        if spec.eval is not None:  # what the periodic metric needs (clean-fid, Inception weights) before any work
            from genzoo.metrics.evaluate import preflight, resolve_metrics

            preflight(resolve_metrics([spec.eval.metric], {spec.eval.metric: dict(spec.eval.options)}))
        self.acc = acc = environment.accelerator(spec, self.run_dir)
        self.console.quiet = not acc.is_main_process
        self.rank, self.world = acc.process_index, acc.num_processes
        self.threads, self.threads_why = environment.choose_threads(
            spec.threads, acc.device, acc.num_processes, environment.started_with(self.run_dir)
        )
        torch.set_num_threads(self.threads)
        if acc.device.type == "cuda":  # TF32 matmuls and convolutions (Ampere and later): float32 range, 10-bit
            torch.backends.cuda.matmul.allow_tf32 = True  # mantissa; the losses of these models do not need more
            torch.backends.cudnn.allow_tf32 = True
            torch.backends.cudnn.benchmark = True  # fixed shapes per level: pick the fastest kernels once
        self.data = self._dataset(recipe.data)
        set_seed(recipe.seed)  # identical initial weights on every process
        self.model = create_model(recipe.model, recipe.prior, self.data.image_shape).to(acc.device)
        self.model.config["data"] = recipe.data
        self.growth = growth_schedule(spec.growth, self.model, self.data, recipe, self.world)
        sizes = {lv.batch_size for lv in self.growth.levels} if self.growth else {spec.batch_size}
        check_batch_sizes(
            sizes, self.world, spec.grad_accumulation, len(self.data), recipe.data["name"], bool(self.growth)
        )
        self.phases = self.model.phases()
        unused = check_phase_names(self.phases, spec.phases, self.model, recipe.model["name"])
        if unused:
            trained = ", ".join(p.name for p in self.phases)
            self.console.say(f"train.phases.{', '.join(unused)}: unused with this prior (the phases: {trained})")
        self.hyper, self.params, self.optimizers = build_optimizers(
            self.model, self.phases, spec.phases, acc.prepare_optimizer, spec.fused_optimizer
        )
        self.base_lr = {name: h["lr"] for name, h in self.hyper.items()}
        self.all_params = list(self.model.parameters())
        self.ema = EMA(self.model, spec.ema_half_life_images) if spec.ema_half_life_images else None
        if self.growth:
            self.total_steps = (
                spec.steps if spec.steps is not None else self.growth.steps_for_images(spec.epochs * len(self.data))
            )
        else:
            self.batches = EpochBatches(len(self.data), spec.batch_size, recipe.seed, self.rank, self.world)
            self.batch_size, self.level_data = spec.batch_size, self.data
            bpe = self.batches.batches_per_epoch
            self.total_steps = spec.steps if spec.steps is not None else math.ceil(spec.epochs * bpe)
        self.level, self.best = None, None
        self.checkpoints = Checkpoints(self.run_dir, spec.keep_checkpoints)
        self.step, self.epoch, self.batch_in_epoch = 0, 0, 0
        torch.manual_seed(recipe.seed + 1000 * self.rank)  # per-process training noise

    def _dataset(self, section: dict):
        """The training split of the recipe's dataset, or the dataset given to the Trainer in Python."""
        from genzoo.core.registry import DATASETS, build

        if self.dataset is not None:
            return self.dataset
        return build(DATASETS, section, "data", split="train")[0]

    def environment(self) -> dict:
        """What this run resolved from its surroundings: saved as environment.json and printed at the start."""
        return environment.describe(self.acc, self.threads, self.threads_why)

    def _enter_level(self):
        """Point the model, the data, the batch order and the optimisers at the level of the current step."""
        level = self.growth.level_at(self.step)
        if level == self.level:
            return
        self.level, self.batch_size = level, level.batch_size
        self.level_data = self.data.at_resolution(level.resolution)
        # Each level has its own shuffles, so the order depends only on (seed, level, epoch in the level).
        self.batches = EpochBatches(
            len(self.level_data), level.batch_size, self.recipe.seed + 7919 * level.index, self.rank, self.world
        )
        for phase in self.phases:  # the level's learning rate, else the phase's own
            self.hyper[phase.name]["lr"] = self.growth.lr.get(level.resolution, self.base_lr[phase.name])
        if self.step == level.first_step and level.index > 0 and self.growth.spec.reset_optimizers:
            for opt in self.optimizers.values():  # ALAE restarts Adam at each resolution switch
                opt.state.clear()
        self.console.say(f"level {level.index}: {level.resolution}x{level.resolution}, batch {level.batch_size}")

    def _resume_or_start(self):
        saved = self.run_dir / "recipe.yaml"
        latest = self.checkpoints.latest() if self.checkpoints.dir.is_dir() else None
        if latest is None:
            if self.acc.is_main_process:
                self.run_dir.mkdir(parents=True, exist_ok=True)
                save_recipe(self.recipe, saved)
                (self.run_dir / "metrics.jsonl").unlink(missing_ok=True)
            return
        import yaml

        changed = differences(yaml.safe_load(saved.read_text()) if saved.is_file() else {}, self.recipe.to_dict())
        if changed:
            raise GenzooError(
                f"run folder '{self.run_dir}' holds a run with a different recipe ({', '.join(changed[:4])} differ)",
                "give this recipe another name (name=... override) to start a new run, "
                "or restore the old settings to resume",
            )
        state = Checkpoints.read(latest, self.rank)
        self._load_state(state)
        if self.acc.is_main_process:
            save_recipe(self.recipe, saved)  # may carry a raised train.steps
            truncate_after(self.run_dir / "metrics.jsonl", self.step)
        self.console.say(f"resumed '{self.run_dir}' from {latest.name} (step {self.step})")

    def _load_state(self, state):
        model_state = {k: v for k, v in state["model"].items() if not k.startswith("ema.")}
        self.model.load_state_dict(model_state)
        if self.ema:
            self.ema.load_state_dict(state["model"])
        for name, opt in self.optimizers.items():
            # The recipe's lr/betas win over the saved ones: each step applies its phase's settings.
            opt.load_state_dict(optimizer_from_tensors(state["optimizers"], state["optimizers_meta"][name], name))
        t = state["trainer"]
        self.step, self.epoch, self.batch_in_epoch = t["step"], t["epoch"], t["batch_in_epoch"]
        self.best = t.get("best_eval")
        set_rng_state(state["rng"], state["rng_meta"])

    # -- the loop ---------------------------------------------------------------------------------------------
    def fit(self) -> Path:
        self._setup()
        with self._run_lock():
            self._resume_or_start()
            if self.acc.is_main_process:
                from genzoo.core.io import write_json

                write_json(self.run_dir / "environment.json", self.environment())
            self.console.say(
                start_line(self.recipe, self.data, self.model, self.environment(), self.step, self.total_steps)
            )
            self._repair_export()
            if self.step >= self.total_steps:
                self.console.say(
                    f"run '{self.run_dir}' already finished at step {self.step}; raise train.steps to continue"
                )
                return self.run_dir
            return self._loop()

    def _run_lock(self):
        """One training per run folder: an advisory lock held by the main process (released when it exits)."""
        from genzoo.core.io import folder_lock

        if not self.acc.is_main_process:
            return contextlib.nullcontext()
        return folder_lock(self.run_dir, "training")

    def _repair_export(self):
        """model/ must hold the latest checkpoint's weights: a kill between a checkpoint and its export (or during the
        export) left an older or no model/, so write it again from the checkpoint just loaded."""
        from genzoo.modelfile.folder import exported_step

        latest = self.checkpoints.latest() if self.checkpoints.dir.is_dir() else None
        if latest is None or exported_step(self.run_dir / "model") == self.step:
            return
        if self.acc.is_main_process:
            self.console.say(f"model/ is not the export of {latest.name}: writing it again")
            self._export()
        self.acc.wait_for_everyone()

    def _loop(self) -> Path:
        acc, spec = self.acc, self.spec
        if spec.log_with:
            environment.start_trackers(acc, self.recipe)
        self.stop.install()
        self.model.train()
        sums, count, t0, step0 = {}, 0, time.perf_counter(), self.step
        self.console.start(self.recipe.name, self.total_steps, self.step)
        try:
            while self.step < self.total_steps:
                if self.growth:
                    self._enter_level()
                pin = acc.device.type == "cuda"
                stream = batch_stream(
                    self.level_data, self.batches, self.epoch, self.batch_in_epoch, spec.num_workers, pin
                )
                for b, images in stream:
                    x = to_unit_float(images.to(acc.device, non_blocking=True))
                    if self.growth:
                        x = self._grow(x)
                    logs = self._train_step(x)
                    for k, v in logs.items():
                        v = v.float()  # a bf16 loss summed over log_every steps in bf16 loses its digits
                        sums[k] = sums[k] + v if k in sums else v
                    count += 1
                    self.step += 1
                    self.batch_in_epoch = b + 1
                    if self.batch_in_epoch == self.batches.batches_per_epoch:
                        self.epoch, self.batch_in_epoch = self.epoch + 1, 0
                    level_done = self.growth is not None and self.step == self.level.end_step
                    if level_done:  # the next level starts its own batch order
                        self.epoch, self.batch_in_epoch = 0, 0
                    if self.ema:
                        self.ema.update(self.batch_size)
                    last = self.step >= self.total_steps or self.stopping
                    self.console.heartbeat(self.step, step0, t0, self.total_steps, self.batch_size)
                    if self.step % spec.log_every == 0 or last:
                        images_per_s = (self.step - step0) * self.batch_size / (time.perf_counter() - t0)
                        self._log(sums, count, images_per_s)
                        sums, count, t0, step0 = {}, 0, time.perf_counter(), self.step
                    if spec.eval and self._eval_due():
                        self._evaluate()
                    if self.step % spec.checkpoint_every == 0 or last:
                        self._check_finite(sums)
                        self.save_checkpoint()
                    if (
                        self.step % spec.sample_every == 0 or last
                    ):  # after the checkpoint: a failing grid loses nothing
                        self._sample_grid()
                    if last or level_done:
                        break
                if self.stopping:
                    raise KeyboardInterrupt
        finally:
            self.console.stop()
            if spec.log_with:
                acc.end_training()
            self.stop.restore()
        return self.run_dir

    def _grow(self, x: torch.Tensor) -> torch.Tensor:
        """Set the model's level and blend for this step and blend the reals the same way."""
        blend = self.growth.blend(self.step)
        self.model.set_growth(self.level.resolution, blend)
        return blend_reals(x, blend)

    def _train_step(self, x: torch.Tensor) -> dict:
        acc, spec = self.acc, self.spec
        chunks = x.chunk(spec.grad_accumulation) if spec.grad_accumulation > 1 else (x,)
        logs = {}
        for phase in self.phases:
            own = self.params[phase.name]
            for p in self.all_params:
                p.requires_grad_(False)
            for p in own:
                p.requires_grad_(True)
            opt = self.optimizers[phase.optimizer or phase.name]
            opt.zero_grad(set_to_none=True)
            for chunk in chunks:
                with acc.autocast():
                    loss, phase_logs = phase.loss(chunk)
                acc.backward(loss / len(chunks))
                for k, v in phase_logs.items():
                    logs[k] = logs[k] + v / len(chunks) if k in logs else v / len(chunks)
            if self.world > 1:
                grads = [p.grad for p in own if p.grad is not None]
                if phase is self.phases[0]:  # the stop flag rides on the first all-reduce: no extra collective
                    flag = torch.tensor([float(self.stop.received is not None)], device=acc.device)
                    grads.append(flag)
                distributed.all_reduce_mean(grads, self.world)
                if phase is self.phases[0]:
                    # A signal reaching only some processes (a scheduler, a Ctrl-C in one terminal) stops them all at
                    # the same step: a process that stopped alone would leave the others waiting in a collective.
                    self.stopping = bool(flag.item() > 0)
            if spec.grad_clip:
                acc.clip_grad_norm_(own, spec.grad_clip)
            for group in opt.param_groups:  # a shared optimiser steps with the settings of the phase stepping it
                group.update(self.hyper[phase.name])
            opt.step()
        for p in self.all_params:
            p.requires_grad_(True)
        if self.world == 1:
            self.stopping = self.stop.received is not None
        return logs

    # -- evaluation during training (the MBRCE-AAE project: FID every few epochs at the top resolution, best kept)
    def _images_at(self, step: int) -> int:
        return self.growth.images_before(step) if self.growth else step * self.spec.batch_size

    def _eval_due(self) -> bool:
        grown = not self.growth or (self.level.end_step is None and self.growth.blend(self.step - 1) >= 1.0)
        return eval_due(self.spec.eval, self.step, self.total_steps, self._images_at, grown, len(self.data))

    def _own_rng(self):
        """Evaluation, sample grids and export fits draw random numbers without moving the training stream: the CPU
        generator and, on a GPU, the device's are restored after the block."""
        devices = [self.acc.device] if self.acc.device.type == "cuda" else []
        return torch.random.fork_rng(devices=devices)

    def _ema_weights(self):
        """The EMA weights swapped in for the block (evaluation, samples, export); the live ones without EMA."""
        return self.ema.applied() if self.ema else contextlib.nullcontext()

    def _evaluate(self):
        """Measure the recipe's metric on its held-out split (main process, EMA weights); keep the best model."""
        ev, acc = self.spec.eval, self.acc
        if acc.is_main_process:
            self.model.eval()
            with self._own_rng(), self._ema_weights():
                value, better = measure_and_keep_best(self.model, ev, self.best, self.run_dir, self.step)
                self.best = value if better else self.best
            self.model.train()
            record = {"step": self.step, f"eval/{ev.value or ev.metric}": value, "best": better}
            append_record(self.run_dir / "metrics.jsonl", record)
            best = " (best so far: model-best/)" if better else ""
            self.console.say(f"step {self.step}: {ev.value or ev.metric} {value:.4g}{best}")
        acc.wait_for_everyone()

    # -- logging, samples, checkpoints -------------------------------------------------------------------------
    def _log(self, sums, count, images_per_s):
        names = sorted(sums)
        means = torch.stack([sums[k].float() / count for k in names]) if names else torch.zeros(0)
        if self.world > 1:  # every process sees (and logs) the same averaged losses
            distributed.all_reduce_mean([means], self.world)
        values = dict(zip(names, means.tolist()))
        bad = [k for k, v in values.items() if not math.isfinite(v)]
        if bad:
            raise NonFiniteLoss(self._nonfinite_message(bad[0]), self._nonfinite_fix(bad[0]))
        record = {
            "step": self.step,
            "epoch": self.epoch,
            "images_per_s": round(images_per_s, 2),
            "steps_averaged": count,  # fewer than log_every after a resume or at the end: a partial window
            **{f"loss/{k}": v for k, v in values.items()},
        }
        if self.growth:  # epochs count images over all levels; the level and blend the last step used
            record.update(
                epoch=round(self.growth.images_before(self.step) / len(self.data), 4),
                resolution=self.level.resolution,
                blend=round(self.growth.blend(self.step - 1), 6),
            )
        if self.acc.is_main_process:
            append_record(self.run_dir / "metrics.jsonl", record)
            self.console.log(record, values, images_per_s, self.total_steps)
        if self.spec.log_with:
            self.acc.log(record, step=self.step)

    def _check_finite(self, sums):
        for k, v in sums.items():
            if not torch.isfinite(v).all():
                raise NonFiniteLoss(self._nonfinite_message(k), self._nonfinite_fix(k))

    def _nonfinite_message(self, name):
        kept = self.checkpoints.intact()
        return f"loss '{name}' became NaN or infinite by step {self.step}; training stopped and {kept}"

    def _nonfinite_fix(self, name):
        phase = next((p.name for p in self.phases if p.name == name), self.phases[0].name)
        return f"lower the learning rate (train.phases.{phase}.lr) or set train.grad_clip"

    @torch.no_grad()
    def _sample_grid(self):
        """Samples from the same seed at every grid, so grids compare over training. The global RNG is left
        untouched (generators with noise inputs draw from it), so grids never change the training stream."""
        if not self.acc.is_main_process or not _can_sample(self.model):
            return
        from genzoo.core.grids import save_grid

        self.model.eval()
        with self._own_rng(), self._ema_weights():
            torch.manual_seed(self.recipe.seed)
            images = self.model.sample(
                self.spec.sample_count, generator=torch.Generator().manual_seed(self.recipe.seed)
            )
        self.model.train()
        save_grid(images, self.run_dir / "samples" / f"step-{self.step:07d}.png")

    def save_checkpoint(self):
        """Write a checkpoint and the model/ export. All processes take part (each saves its RNG state)."""
        acc = self.acc
        if self.world > 1:
            distributed.average_buffers(self.model, self.world)
        fits = can(self.model, FitsBeforeExport)
        if acc.is_main_process and fits:
            # e.g. LBAE fits its code sampler on training codes: before the state is taken, so that the checkpoint
            # and the export hold the same fitted buffers.
            self.model.eval()
            with self._ema_weights(), self._own_rng():
                self.model.prepare_export(self.data)
            self.model.train()
        if self.world > 1 and fits:
            distributed.broadcast_buffers(self.model)  # the main process's fit, on every process
        fingerprint = distributed.state_fingerprint(self.model)
        distributed.check_in_sync(fingerprint, self.world, acc.device)
        tmp = self.checkpoints.dir / f".tmp-step-{self.step:07d}"
        what = f"write the checkpoint of step {self.step}"
        try:
            if acc.is_main_process:
                tmp = self.checkpoints.begin(self.step)
            acc.wait_for_everyone()
            Checkpoints.write_rank(tmp, self.rank, {"model_state_sha256": fingerprint})
            if acc.is_main_process:
                model_tensors = dict(self.model.state_dict())
                if self.ema:
                    model_tensors.update(self.ema.state_dict())
                state = {
                    "step": self.step,
                    "epoch": self.epoch,
                    "batch_in_epoch": self.batch_in_epoch,
                    "processes": self.world,
                    "recipe": self.recipe.name,
                    "best_eval": self.best,
                }
                optimizers = {n: o.state_dict() for n, o in self.optimizers.items()}
                self.checkpoints.write_main(tmp, model_tensors, optimizers, state)
            acc.wait_for_everyone()
            if acc.is_main_process:
                self.checkpoints.commit(tmp, self.step)
                what = f"export the model of step {self.step}"  # the checkpoint is whole: only model/ failed
                self._export()
        except OSError as exc:  # a full disk, a quota, a permission: nothing half-written stays behind
            raise self.checkpoints.abandon(tmp, what, exc) from None
        acc.wait_for_everyone()

    def _export(self):
        """model/: the weights of the current step (EMA weights when enabled), whole or not at all."""
        from genzoo.modelfile.folder import save_pretrained

        self.model.eval()
        with self._ema_weights():
            save_pretrained(self.model, self.run_dir / "model", extra={"step": self.step})
        self.model.train()


def _can_sample(model) -> bool:
    """Models sample from their prior unless they define their own `sample` (a plugin model may have neither)."""
    from genzoo.models.base import GenerativeAutoencoder

    return model.prior is not None or type(model).sample is not GenerativeAutoencoder.sample

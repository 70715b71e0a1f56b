"""The one trainer: runs any architecture's phases on whatever Accelerate provides (CPU, GPUs, nodes).

Per step, for each phase the architecture declares: only that phase's parameters require gradients, its loss is
back-propagated (split into `grad_accumulation` micro-batches), gradients are averaged over processes, and its own
optimiser steps. Gradients are all-reduced by hand in one flat buffer per phase rather than through DDP, because
DDP assumes one forward per step through one wrapper, while adversarial architectures run several phases over
different parameter subsets per batch.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import time
from pathlib import Path

import torch

from genzoo.core.capabilities import FitsBeforeExport, Grows, ServesResolutions, can, require
from genzoo.core.errors import GenzooError
from genzoo.core.recipe import Recipe, differences, save_recipe
from genzoo.datasets.base import to_unit_float
from genzoo.train.batches import EpochBatches, batch_stream
from genzoo.train.checkpoint import Checkpoints, optimizer_from_tensors, set_rng_state
from genzoo.train.ema import EMA
from genzoo.train.optim import phase_settings


class NonFiniteLoss(GenzooError):
    pass


class Trainer:
    def __init__(self, recipe: Recipe, console=None, dataset=None):
        """`dataset`: a genzoo ImageDataset (or any object with __len__, __getitems__ and image_shape giving uint8
        batches) to train on instead of the recipe's data section, from Python (README: the Python API)."""
        self.recipe = recipe
        self.dataset = dataset
        self.spec = recipe.train
        self.run_dir = recipe.run_dir
        self.console = console
        self._stop_signal = None  # set by the signal handler of this process
        self._stopping = False  # agreed by every process: stop after this step

    # -- setup ------------------------------------------------------------------------------------------------
    def _setup(self):
        from accelerate import Accelerator
        from accelerate.utils import set_seed

        from genzoo.modelfile.folder import create_model

        spec, recipe = self.spec, self.recipe
        _check_trackers(spec.log_with)
        if spec.mixed_precision is None:  # a resumed run keeps the precision it was started with
            spec.mixed_precision = _saved_train_key(self.run_dir, "mixed_precision")
        if spec.eval is not None:  # what the periodic metric needs (clean-fid, Inception weights) before any work
            from genzoo.metrics.evaluate import preflight, resolve_metrics

            preflight(resolve_metrics([spec.eval.metric], {spec.eval.metric: dict(spec.eval.options)}))
        # Several processes without a GPU (accelerate launch --multi_gpu / torchrun on CPUs): gloo on the CPU.
        cpu_processes = int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()
        if int(os.environ.get("WORLD_SIZE", "1")) == 1:  # a second Trainer in this process (studies, Python) starts
            from accelerate.state import AcceleratorState  # from its own settings, not the first one's

            AcceleratorState._reset_state(reset_partial_state=True)
        self.acc = acc = Accelerator(
            mixed_precision=spec.mixed_precision,  # None: Accelerate's own (config file, launch flag, environment)
            log_with=spec.log_with or None,
            project_dir=str(self.run_dir),
            cpu=spec.cpu or cpu_processes,
        )
        self.rank, self.world = acc.process_index, acc.num_processes
        self.threads, self.threads_why = choose_threads(
            spec.threads, acc.device, acc.num_processes, _started_with(self.run_dir)
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
        self.growth = self._growth_schedule()
        for batch in sorted({lv.batch_size for lv in self.growth.levels} if self.growth else {spec.batch_size}):
            if batch % (self.world * spec.grad_accumulation):
                raise GenzooError(
                    f"batch size {batch} does not split into {self.world} processes x "
                    f"{spec.grad_accumulation} micro-batches",
                    f"use a multiple of {self.world * spec.grad_accumulation}"
                    + (" in train.growth.batch_size" if self.growth else ""),
                )
            if len(self.data) < batch:
                raise GenzooError(
                    f"dataset {recipe.data['name']} has {len(self.data)} training images, fewer than "
                    f"the batch size {batch}",
                    "lower train.growth.batch_size" if self.growth else "lower train.batch_size",
                )
        self.phases = self.model.phases()
        unknown = set(spec.phases) - {p.name for p in self.phases}
        if unknown:
            raise GenzooError(
                f"recipe key 'train.phases.{sorted(unknown)[0]}' names no phase of {recipe.model['name']}",
                f"its phases are: {', '.join(p.name for p in self.phases)}",
            )
        # One Adam per Phase.optimizer name (default: the phase's own), over the modules of every phase naming it, so
        # phases sharing one (ALAE) share the moments of the modules they have in common. A phase zeroes all of its
        # optimiser's gradients and only its own parameters require gradients, so its step moves nothing else.
        self.hyper, self.params, decoupled, modules_of = {}, {}, {}, {}
        for phase in self.phases:
            settings = phase_settings(phase, spec.phases.get(phase.name))
            decoupled[phase.name] = settings.pop("decoupled_weight_decay")
            self.hyper[phase.name] = settings  # lr, betas, weight_decay: what each step gives the optimiser's groups
            self.params[phase.name] = [p for m in phase.modules for p in getattr(self.model, m).parameters()]
            names = modules_of.setdefault(phase.optimizer or phase.name, [])
            names += [m for m in phase.modules if m not in names]
        self.base_lr = {name: h["lr"] for name, h in self.hyper.items()}
        self.optimizers = {}
        for key, names in modules_of.items():
            sharing = [p.name for p in self.phases if (p.optimizer or p.name) == key]
            params = [p for m in names for p in getattr(self.model, m).parameters()]
            opt = _adam(params, self.hyper[sharing[0]], _one_decoupling(key, sharing, decoupled))
            self.optimizers[key] = acc.prepare_optimizer(opt)
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
        from genzoo.core.version import __version__

        return {
            "genzoo": __version__,
            "torch": torch.__version__,
            "device": str(self.acc.device),
            "processes": self.world,
            "threads": self.threads,
            "threads_from": self.threads_why,
            "mixed_precision": str(self.acc.mixed_precision),
        }

    def _start_line(self) -> str:
        params = sum(p.numel() for p in self.model.parameters())
        prior = (self.recipe.prior or {}).get("name")
        env = self.environment()
        return (
            f"training '{self.recipe.name}': {self.recipe.data['name']} ({len(self.data)} images "
            f"{'x'.join(map(str, self.data.image_shape))}), {self.recipe.model['name']}"
            + (f" + {prior}" if prior else "")
            + f" ({params / 1e6:.2f}M parameters), {env['device']}, {self.world} process(es) x {self.threads} "
            f"threads ({self.threads_why}), mixed precision {env['mixed_precision']}, step {self.step} of "
            f"{self.total_steps}, into {self.run_dir}"
        )

    def _growth_schedule(self):
        spec, model = self.spec.growth, self.model
        if spec is None:
            return None
        from genzoo.train.growth import GrowthSchedule

        name = self.recipe.model["name"]
        require(
            model,
            Grows,
            f"model '{name}'",
            "train with 'train.growth'",
            "remove the train.growth section (progressive growing needs e.g. style_alae)",
        )
        data = f"dataset '{self.recipe.data['name']}'"
        require(self.data, ServesResolutions, data, "grow", "use an image dataset, or remove train.growth")
        schedule = GrowthSchedule(spec, self.data.image_shape[-1], self.spec.batch_size, len(self.data), self.world)
        missing = [r for r in schedule.resolutions if r not in model.resolutions]
        if missing:
            raise GenzooError(
                f"train.growth starts at {spec.start_resolution}, but model '{name}' has no level at "
                f"{missing[0]} (its levels: {', '.join(map(str, model.resolutions))})",
                "raise train.growth.start_resolution or lower the model's start_resolution",
            )
        return schedule

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
        self._say(f"level {level.index}: {level.resolution}x{level.resolution}, batch {level.batch_size}")

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
            _truncate_metrics(self.run_dir / "metrics.jsonl", self.step)
        self._say(f"resumed '{self.run_dir}' from {latest.name} (step {self.step})")

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
            self._say(self._start_line())
            self._repair_export()
            if self.step >= self.total_steps:
                self._say(f"run '{self.run_dir}' already finished at step {self.step}; raise train.steps to continue")
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
            self._say(f"model/ is not the export of {latest.name}: writing it again")
            self._export()
        self.acc.wait_for_everyone()

    def _loop(self) -> Path:
        acc, spec = self.acc, self.spec
        if spec.log_with:
            from genzoo.core.recipe import flat_items

            config = flat_items(self.recipe.to_dict())  # typed: trackers plot numbers as numbers
            acc.init_trackers(
                self.recipe.name,
                config={k: v if isinstance(v, (bool, int, float, str)) else str(v) for k, v in config.items()},
            )
        self._install_signal_handlers()
        self._last_beat = time.perf_counter()
        self.model.train()
        sums, count, t0, step0 = {}, 0, time.perf_counter(), self.step
        progress = self._progress()
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
                    last = self.step >= self.total_steps or self._stopping
                    if progress is None:
                        self._heartbeat(step0, t0)
                    if self.step % spec.log_every == 0 or last:
                        images_per_s = (self.step - step0) * self.batch_size / (time.perf_counter() - t0)
                        self._log(sums, count, images_per_s, progress)
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
                if self._stopping:
                    raise KeyboardInterrupt
        finally:
            if progress is not None:
                progress.stop()
            if spec.log_with:
                acc.end_training()
            self._restore_signal_handlers()
        return self.run_dir

    def _heartbeat(self, step0: int, t0: float):
        """Off a terminal (a log file, a cluster job): a line every GENZOO_PROGRESS_SECONDS (30), between the
        log_every lines, so that a log shows the run is alive and how fast it goes."""
        now = time.perf_counter()
        if now - self._last_beat < float(os.environ.get("GENZOO_PROGRESS_SECONDS", "30")):
            return
        self._last_beat = now
        rate = (self.step - step0) * self.batch_size / max(now - t0, 1e-9)
        left = (self.total_steps - self.step) * self.batch_size / max(rate, 1e-9)
        eta = f"{left:.0f} s" if left < 120 else f"{left / 60:.0f} min"
        self._say(f"step {self.step}/{self.total_steps} ({rate:,.0f} img/s, about {eta} left)")

    def _grow(self, x: torch.Tensor) -> torch.Tensor:
        """Set the model's level and blend for this step and blend the reals the same way (ALAE): during a
        transition, real images are a mix of themselves and their 2x-downsampled, re-upsampled selves."""
        blend = self.growth.blend(self.step)
        self.model.set_growth(self.level.resolution, blend)
        if blend < 1.0:
            coarse = torch.nn.functional.avg_pool2d(x, 2).repeat_interleave(2, -2).repeat_interleave(2, -1)
            x = torch.lerp(coarse, x, blend)
        return x

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
                    flag = torch.tensor([float(self._stop_signal is not None)], device=acc.device)
                    grads.append(flag)
                _all_reduce_mean(grads, self.world)
                if phase is self.phases[0]:
                    # A signal reaching only some processes (a scheduler, a Ctrl-C in one terminal) stops them all at
                    # the same step: a process that stopped alone would leave the others waiting in a collective.
                    self._stopping = bool(flag.item() > 0)
            if spec.grad_clip:
                acc.clip_grad_norm_(own, spec.grad_clip)
            for group in opt.param_groups:  # a shared optimiser steps with the settings of the phase stepping it
                group.update(self.hyper[phase.name])
            opt.step()
        for p in self.all_params:
            p.requires_grad_(True)
        if self.world == 1:
            self._stopping = self._stop_signal is not None
        return logs

    # -- evaluation during training (the MBRCE-AAE project: FID every few epochs at the top resolution, best kept)
    def _images_at(self, step: int) -> int:
        return self.growth.images_before(step) if self.growth else step * self.spec.batch_size

    def _eval_due(self) -> bool:
        ev = self.spec.eval
        if self.growth and (self.level.end_step is not None or self.growth.blend(self.step - 1) < 1.0):
            return False  # only the fully grown model is comparable
        if ev.every_steps:
            return self.step % ev.every_steps == 0
        if ev.every_epochs:
            span = ev.every_epochs * len(self.data)
            return self._images_at(self.step) // span > self._images_at(self.step - 1) // span
        return self.step >= self.total_steps

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
            from genzoo.metrics.evaluate import evaluate
            from genzoo.metrics.fid import forget_model_features
            from genzoo.modelfile.folder import save_pretrained

            forget_model_features()  # the same model object holds new weights now
            self.model.eval()
            with self._own_rng(), self._ema_weights():
                result = evaluate(self.model, [ev.metric], {ev.metric: dict(ev.options)}, split=ev.split)[ev.metric]
                value = float(result[ev.value or ev.metric])
                better = self.best is None or (value > self.best if ev.higher_is_better else value < self.best)
                if better:
                    self.best = value
                    save_pretrained(
                        self.model,
                        self.run_dir / "model-best",
                        extra={"step": self.step, "best": {ev.value or ev.metric: value, "split": ev.split}},
                    )
            self.model.train()
            with open(self.run_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps({"step": self.step, f"eval/{ev.value or ev.metric}": value, "best": better}) + "\n")
            self._say(
                f"step {self.step}: {ev.value or ev.metric} {value:.4g}"
                + (" (best so far: model-best/)" if better else "")
            )
        acc.wait_for_everyone()

    # -- logging, samples, checkpoints -------------------------------------------------------------------------
    def _log(self, sums, count, images_per_s, progress):
        names = sorted(sums)
        means = torch.stack([sums[k].float() / count for k in names]) if names else torch.zeros(0)
        if self.world > 1:  # every process sees (and logs) the same averaged losses
            _all_reduce_mean([means], self.world)
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
            with open(self.run_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
            if progress is not None:
                shown = "  ".join(f"{k} {v:.4f}" for k, v in values.items())
                progress.update(self._task, completed=self.step, info=f"{images_per_s:,.0f} img/s  {shown}")
            else:
                self._say(
                    f"step {self.step}/{self.total_steps}  "
                    + "  ".join(f"{k} {v:.4g}" for k, v in record.items() if k != "step")
                )
        if self.spec.log_with:
            self.acc.log(record, step=self.step)

    def _check_finite(self, sums):
        for k, v in sums.items():
            if not torch.isfinite(v).all():
                raise NonFiniteLoss(self._nonfinite_message(k), self._nonfinite_fix(k))

    def _nonfinite_message(self, name):
        latest = self.checkpoints.latest() if self.checkpoints.dir.is_dir() else None
        kept = f"the last good checkpoint ({latest.name}) is intact" if latest else "no checkpoint was written"
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
            _average_buffers(self.model, self.world)
        fits = can(self.model, FitsBeforeExport)
        if acc.is_main_process and fits:
            # e.g. LBAE fits its code sampler on training codes: before the state is taken, so that the checkpoint
            # and the export hold the same fitted buffers.
            self.model.eval()
            with self._ema_weights(), self._own_rng():
                self.model.prepare_export(self.data)
            self.model.train()
        if self.world > 1 and fits:
            _broadcast_buffers(self.model)  # the main process's fit, on every process
        fingerprint = state_fingerprint(self.model)
        _check_in_sync(fingerprint, self.world, acc.device)
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
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
            latest = self.checkpoints.latest() if self.checkpoints.dir.is_dir() else None
            kept = f"the last good checkpoint ({latest.name}) is intact" if latest else "no checkpoint was written"
            raise GenzooError(
                f"could not {what} ({exc.strerror or exc}"
                + (f": '{exc.filename}'" if exc.filename else "")
                + "); "
                + kept,
                "free disk space (or fix the folder's permissions), then run the same command to resume",
            ) from None
        acc.wait_for_everyone()

    def _export(self):
        """model/: the weights of the current step (EMA weights when enabled), whole or not at all."""
        from genzoo.modelfile.folder import save_pretrained

        self.model.eval()
        with self._ema_weights():
            save_pretrained(self.model, self.run_dir / "model", extra={"step": self.step})
        self.model.train()

    # -- console and signals ----------------------------------------------------------------------------------
    def _say(self, text):
        if self.acc.is_main_process and self.console is not None:
            self.console.print(text)

    def _progress(self):
        if not self.acc.is_main_process or self.console is None or not self.console.is_terminal:
            return None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
            console=self.console,
        )
        self._task = progress.add_task(self.recipe.name, total=self.total_steps, completed=self.step, info="")
        progress.start()
        return progress

    def _install_signal_handlers(self):
        """First Ctrl-C / SIGTERM: finish the step, checkpoint, stop. Second: stop at once."""
        self._old_handlers = {}

        def handler(signum, frame):
            if self._stop_signal is not None:
                raise KeyboardInterrupt
            self._stop_signal = signum
            self._say("stopping after this step (checkpoint follows); press Ctrl-C again to stop at once")

        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old_handlers[sig] = signal.signal(sig, handler)
            except ValueError:  # not the main thread
                pass

    def _restore_signal_handlers(self):
        for sig, old in self._old_handlers.items():
            signal.signal(sig, old)


def _adam(params, hyper: dict, decoupled: bool) -> torch.optim.Optimizer:
    """AdamW for decoupled weight decay, else Adam: not Adam(decoupled_weight_decay=True), an argument older torch
    lacks (new in 2.7). The same updates, bit for bit, on torch 2.13."""
    return (torch.optim.AdamW if decoupled else torch.optim.Adam)(params, **hyper)


def _one_decoupling(key: str, phases: list[str], decoupled: dict) -> bool:
    """Phases sharing an optimiser share its class: Adam or AdamW, not one per phase."""
    differ = next((p for p in phases if decoupled[p] != decoupled[phases[0]]), None)
    if differ is not None:
        raise GenzooError(
            f"phases '{phases[0]}' and '{differ}' share the optimiser '{key}' but not decoupled_weight_decay",
            f"set train.phases.{differ}.decoupled_weight_decay={str(decoupled[phases[0]]).lower()}",
        )
    return decoupled[phases[0]]


def _saved_train_key(run_dir: Path, key: str):
    """A train key of the recipe a run folder holds (None when there is none): what the run was started with."""
    import yaml

    try:
        return ((yaml.safe_load((run_dir / "recipe.yaml").read_text()) or {}).get("train") or {}).get(key)
    except (OSError, yaml.YAMLError, AttributeError):
        return None


def _started_with(run_dir: Path) -> int | None:
    """The thread count a run started with (environment.json), so that a resume computes exactly as before."""
    try:
        return int(json.loads((run_dir / "environment.json").read_text())["threads"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def choose_threads(requested: int | None, device, processes: int, previous: int | None = None) -> tuple[int, str]:
    """(CPU threads for this process, where the number came from). On a shared machine torch's default (one thread
    per core) collapses: OpenMP threads spin waiting for cores that other work holds (bench/threads.py measures it).
    So, unless train.threads or OMP_NUM_THREADS says otherwise, each process takes its share of the cores that the
    1-minute load average leaves free, and at least one. A resumed run keeps the count it started with: the thread
    count changes the order of float sums, and with it the bits of the weights."""
    if requested is not None:
        return requested, "train.threads"
    if os.environ.get("OMP_NUM_THREADS"):
        return torch.get_num_threads(), "OMP_NUM_THREADS"
    if previous is not None:
        return previous, "as when this run started; set train.threads to change it"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    local = int(os.environ.get("LOCAL_WORLD_SIZE", processes if device.type == "cpu" else 1))
    share = max(1, cores // max(local, 1))
    if device.type != "cpu":  # the GPU does the work; the threads feed it
        return share, f"{cores} cores / {local} local processes"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    free = max(1, min(share, int((cores - load) / max(local, 1) + 0.5)))
    return free, f"{cores} cores, load {load:.1f}; set train.threads to choose"


def _check_trackers(names: list[str]) -> None:
    from accelerate.utils import LoggerType

    known = sorted(t.value for t in LoggerType if t.value != "all")
    for name in names:
        if name not in known:
            from genzoo.core.errors import did_you_mean

            raise GenzooError(
                f"recipe key 'train.log_with' names '{name}', not a tracker Accelerate knows"
                + did_you_mean(name, known),
                f"use any of: {', '.join(known)}",
            )


def _can_sample(model) -> bool:
    """Models sample from their prior unless they define their own `sample` (a plugin model may have neither)."""
    from genzoo.models.base import GenerativeAutoencoder

    return model.prior is not None or type(model).sample is not GenerativeAutoencoder.sample


BUCKET_ELEMENTS = 1 << 23  # 32 MB of float32 per collective: large models never hold a second full copy


def _all_reduce_mean(grads: list[torch.Tensor], world: int) -> None:
    """Average gradients (or buffers) over processes: flat buckets of at most BUCKET_ELEMENTS, one collective each
    (a 50M-parameter StyleALAE takes 7 instead of one 200 MB copy; small models still take exactly one)."""
    import torch.distributed as dist

    bucket: list[torch.Tensor] = []
    size = 0
    for g in [*grads, None]:
        if g is not None and (not bucket or (size + g.numel() <= BUCKET_ELEMENTS and g.dtype == bucket[0].dtype)):
            bucket.append(g)
            size += g.numel()
            continue
        if bucket:
            flat = torch.cat([t.reshape(-1) for t in bucket])
            dist.all_reduce(flat)
            flat /= world
            offset = 0
            for t in bucket:
                t.copy_(flat[offset : offset + t.numel()].view_as(t))
                offset += t.numel()
        bucket, size = ([g], g.numel()) if g is not None else ([], 0)


def _float_buffers(model) -> list[torch.Tensor]:
    return [b for b in model.buffers() if b.is_floating_point()]


def _average_buffers(model, world: int) -> None:
    """Buffers each process updates from its own batches (BatchNorm running statistics, StyleALAE's average
    dlatent) are averaged over processes, so every process, the checkpoint and the export hold the same values;
    integer buffers (BatchNorm's batch counter) advance alike on every process."""
    _all_reduce_mean(_float_buffers(model), world)


def state_fingerprint(model) -> str:
    """sha256 over every parameter and buffer of the model, in state_dict order: equal exactly when the states are."""
    import hashlib

    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _broadcast_buffers(model) -> None:
    import torch.distributed as dist

    for buffer in model.buffers():
        dist.broadcast(buffer, src=0)


def _check_in_sync(fingerprint: str, world: int, device) -> None:
    """Guard against silent divergence of processes: their weights and buffers must agree, bit for bit, at every
    checkpoint (one all_gather of a 32-byte digest)."""
    if world == 1:
        return
    import torch.distributed as dist

    digest = torch.tensor(list(bytes.fromhex(fingerprint)), dtype=torch.uint8, device=device)
    gathered = [torch.zeros_like(digest) for _ in range(world)]
    dist.all_gather(gathered, digest)
    if any(not torch.equal(g, gathered[0]) for g in gathered):
        raise GenzooError(
            "processes hold different weights or buffers (synchronisation failed)",
            "report this as a bug with the recipe; run with one process meanwhile",
        )


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop log lines written after the checkpoint we resume from, so metrics.jsonl reads as one run. The log is
    append-only, so a crash or a full disk can only tear its last line: a line that is not whole JSON is dropped."""
    if not path.is_file():
        return
    from genzoo.core.io import atomic_write_text

    kept = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # torn by a kill mid-append
        if isinstance(record, dict) and record.get("step", 0) <= step:
            kept.append(line)
    atomic_write_text(path, "".join(line + "\n" for line in kept))

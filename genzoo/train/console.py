"""What a training run prints, on the main process only: its start line, a progress bar on a terminal (or off one,
a heartbeat line every GENZOO_PROGRESS_SECONDS between the log lines), and each log_every line."""

from __future__ import annotations

import os
import time


class RunConsole:
    """Prints to a rich Console (None: prints nothing); `quiet` on every process but the main one."""

    def __init__(self, console=None):
        self.console = console
        self.quiet = False
        self.bar = None  # the progress bar, while the loop runs on a terminal
        self.task = None
        self.last_beat = time.perf_counter()

    def say(self, text: str) -> None:
        if not self.quiet and self.console is not None:
            self.console.print(text)

    def start(self, name: str, total: int, completed: int) -> None:
        """A progress bar on a terminal; elsewhere heartbeat lines, counted from now."""
        self.last_beat = time.perf_counter()
        if self.quiet or self.console is None or not self.console.is_terminal:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
            console=self.console,
        )
        self.task = self.bar.add_task(name, total=total, completed=completed, info="")
        self.bar.start()

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()

    def heartbeat(self, step: int, step0: int, t0: float, total: int, batch_size: int) -> None:
        """Off a terminal (a log file, a cluster job): a line every GENZOO_PROGRESS_SECONDS (30), between the
        log_every lines, so that a log shows the run is alive and how fast it goes (since step0, at time t0)."""
        now = time.perf_counter()
        if self.bar is not None or now - self.last_beat < float(os.environ.get("GENZOO_PROGRESS_SECONDS", "30")):
            return
        self.last_beat = now
        rate = (step - step0) * batch_size / max(now - t0, 1e-9)
        left = (total - step) * batch_size / max(rate, 1e-9)
        eta = f"{left:.0f} s" if left < 120 else f"{left / 60:.0f} min"
        self.say(f"step {step}/{total} ({rate:,.0f} img/s, about {eta} left)")

    def log(self, record: dict, losses: dict, images_per_s: float, total: int) -> None:
        """A log_every line: into the bar's info on a terminal, else one line of the record's numbers."""
        if self.bar is not None:
            shown = "  ".join(f"{k} {v:.4f}" for k, v in losses.items())
            self.bar.update(self.task, completed=record["step"], info=f"{images_per_s:,.0f} img/s  {shown}")
        else:
            self.say(
                f"step {record['step']}/{total}  "
                + "  ".join(f"{k} {v:.4g}" for k, v in record.items() if k != "step")
            )


def start_line(recipe, data, model, env: dict, step: int, total: int) -> str:
    """The run's first line: what trains on what, where, with how many processes and threads, from which step."""
    params = sum(p.numel() for p in model.parameters())
    prior = (recipe.prior or {}).get("name")
    return (
        f"training '{recipe.name}': {recipe.data['name']} ({len(data)} images "
        f"{'x'.join(map(str, data.image_shape))}), {recipe.model['name']}"
        + (f" + {prior}" if prior else "")
        + f" ({params / 1e6:.2f}M parameters), {env['device']}, {env['processes']} process(es) x {env['threads']} "
        f"threads ({env['threads_from']}), mixed precision {env['mixed_precision']}, step {step} of "
        f"{total}, into {recipe.run_dir}"
    )

"""Stopping on a signal: the first Ctrl-C / SIGTERM finishes the step, checkpoints and stops; the second stops at
once. The trainer agrees on the step to stop at over every process (the flag rides on its first all-reduce)."""

from __future__ import annotations

import signal


class StopSignals:
    """`received`: the first signal this process got while installed (None until then)."""

    def __init__(self, say):
        self.received = None
        self._say = say
        self._old_handlers = {}

    def install(self) -> None:
        def handler(signum, frame):
            if self.received is not None:
                raise KeyboardInterrupt
            self.received = signum
            self._say("stopping after this step (checkpoint follows); press Ctrl-C again to stop at once")

        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old_handlers[sig] = signal.signal(sig, handler)
            except ValueError:  # not the main thread
                pass

    def restore(self) -> None:
        for sig, old in self._old_handlers.items():
            signal.signal(sig, old)

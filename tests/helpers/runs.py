"""The tiny trained runs the tests share: each kind trained once per test run, on first use.

`tiny_run(kind)` (the session fixture in tests/conftest.py) returns the run folder of a really trained tiny model
(runs/<kind>: model/, checkpoints/, samples/, metrics.jsonl, recipe.yaml). Every test that asks for the same kind
gets the same folder, so a test that writes into a run must copy it first (shutil.copytree): after each test the
folders handed out are compared with their state when built, and a changed one fails that test.
"""

from __future__ import annotations

from pathlib import Path

from tests.helpers.cli import ONE_THREAD, run_cli
from tests.helpers.recipes import TINY, TINY_ALAE, TINY_LBAE, TINY_VAE, write_recipe

# kind: (base recipe, sections merged into it, how it is trained: "cli" a `genzoo train` subprocess, "python" the
# Trainer in this process on one torch thread)
KINDS = {
    # the MLP AAE of TINY, 30 steps (one checkpoint, one export): test_cli, test_eval_metrics, test_hub, test_compare,
    # test_samplers
    "aae": (TINY, {"train": {"steps": 30, "checkpoint_every": 30}}, "cli"),
    # the same with half the hidden units: the second model test_compare compares
    "aae_small": (TINY, {"model": {"hidden": 32}, "train": {"steps": 30, "checkpoint_every": 30}}, "python"),
    # TINY_ALAE, 20 steps: test_interpolate
    "alae": (TINY_ALAE, {"train": {"steps": 20, "sample_every": 20, "checkpoint_every": 20}}, "cli"),
    # TINY_VAE and TINY_LBAE as they are (90 steps, enough to learn): test_vae, test_lbae
    "vae": (TINY_VAE, {}, "python"),
    "lbae": (TINY_LBAE, {}, "python"),
}


def tree_state(folder: Path) -> list[tuple[str, int, int]]:
    """Every file and folder under `folder` with its size and modification time (what a write changes)."""
    return sorted((str(p.relative_to(folder)), p.lstat().st_size, p.lstat().st_mtime_ns) for p in folder.rglob("*"))


class TinyRuns:
    """Builds each kind of KINDS once under `root` (root/<kind>/<kind>.yaml, root/<kind>/runs/<kind>)."""

    def __init__(self, root: Path):
        self.root = root
        self._runs: dict[str, Path] = {}
        self._outputs: dict[str, str] = {}
        self._states: dict[str, list] = {}

    def __call__(self, kind: str) -> Path:
        if kind not in KINDS:
            raise KeyError(f"no tiny run '{kind}': one of {', '.join(KINDS)} (tests/helpers/runs.py)")
        if kind not in self._runs:
            self._build(kind)
        return self._runs[kind]

    def recipe(self, kind: str) -> Path:
        """The recipe file the run was trained from (its output_dir is the run's parent)."""
        self(kind)
        return self.root / kind / f"{kind}.yaml"

    def output(self, kind: str) -> str:
        """What `genzoo train` printed while building a "cli" kind."""
        self(kind)
        return self._outputs[kind]

    def _build(self, kind: str) -> None:
        base, sections, how = KINDS[kind]
        folder = self.root / kind
        folder.mkdir()
        recipe = write_recipe(folder, kind, base=base, **sections)
        if how == "cli":
            proc = run_cli("train", recipe, env=ONE_THREAD)
            assert "done:" in proc.stdout, proc.stdout
            self._outputs[kind] = proc.stdout
            run = folder / "runs" / kind
        else:
            from genzoo.core.recipe import load_recipe
            from genzoo.train.trainer import Trainer

            run = Trainer(load_recipe(recipe)).fit()  # on the one thread tests/conftest.py sets
        assert run == folder / "runs" / kind and (run / "model" / "model.safetensors").is_file(), run
        self._runs[kind] = run
        self._states[kind] = tree_state(folder)

    def changed(self) -> list[str]:
        """The kinds whose folders changed since they were built or last checked (each change reported once)."""
        found = []
        for kind, state in self._states.items():
            now = tree_state(self.root / kind)
            if now != state:
                before, after = set(state), set(now)
                paths = sorted({p for p, *_ in before ^ after})
                found.append(f"{kind} ({', '.join(paths[:5])}{', ...' if len(paths) > 5 else ''})")
                self._states[kind] = now
        return found

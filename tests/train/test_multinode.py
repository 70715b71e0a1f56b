"""A multi-node rehearsal on one machine: the launch a cluster uses, with CPUs (gloo) standing in for GPUs.

Two "nodes" of two processes each are started as a real multi-node job: two `torchrun --nnodes 2 --nproc-per-node 2
--rdzv-backend c10d --rdzv-endpoint 127.0.0.1:PORT` commands, each running `genzoo train recipes/quickstart.yaml`.
Both nodes are killed (SIGKILL, agents and workers) after the checkpoint at step 4, the same two commands resume
the run to step 8, and then every rank holds exactly the weights of one uninterrupted 4-process single-node run.
The run folder is on a filesystem both nodes see, as it must be on a cluster (every rank writes its RNG state into
the checkpoint, and every rank reads it back on resume).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from genzoo.core.io import load_tensors
from tests.helpers.recipes import ROOT

# `python -m genzoo` plus two test hooks: every rank records its place in the job, and saves the weights it holds
# when training ends; with $REHEARSAL_PAUSE_AT every rank waits after the checkpoint at that step, so that the test
# kills the nodes at a known point of the run.
WORKER = """
import json, os, time
from pathlib import Path

from genzoo.core.io import save_tensors
from genzoo.train.trainer import Trainer

out = Path(os.environ["REHEARSAL_OUT"])
pause_at = int(os.environ.get("REHEARSAL_PAUSE_AT", "-1"))
save_checkpoint, fit = Trainer.save_checkpoint, Trainer.fit
keys = ("RANK", "LOCAL_RANK", "GROUP_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_WORLD_SIZE")
place = {k: int(os.environ[k]) for k in keys}


def paused_save_checkpoint(self):
    save_checkpoint(self)
    if self.step == pause_at:
        (out / f"paused-rank{self.rank}.json").write_text(json.dumps({"pid": os.getpid(), **place}))
        time.sleep(600)  # killed here


def fit_and_save_weights(self):
    run = fit(self)
    state = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
    save_tensors(out / f"weights-rank{self.rank}.safetensors", state)
    (out / f"place-rank{self.rank}.json").write_text(json.dumps(place))
    return run


Trainer.save_checkpoint, Trainer.fit = paused_save_checkpoint, fit_and_save_weights

from genzoo.cli import main

main()
"""

STEPS = ["train.epochs=null", "train.steps=8", "train.checkpoint_every=4", "train.log_every=2"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(*layout: str, out: Path, name: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        *layout,
        "--max-restarts",
        "0",
        "-m",
        "rehearsal_worker",
        "train",
        str(ROOT / "recipes" / "quickstart.yaml"),
        f"output_dir={out / 'runs'}",
        f"name={name}",
        *STEPS,
    ]


def two_nodes(out: Path, name: str, env: dict) -> list[subprocess.Popen]:
    """The two node commands of a 2 x 2 job, as a cluster's launcher would start them on two machines."""
    layout = [
        "--nnodes",
        "2",
        "--nproc-per-node",
        "2",
        "--rdzv-backend",
        "c10d",
        "--rdzv-endpoint",
        f"127.0.0.1:{free_port()}",
        "--rdzv-id",
        name,
    ]
    return [
        subprocess.Popen(
            torchrun(*layout, out=out, name=name),
            env=env,
            stdout=(out / f"node{node}.log").open("a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a node's agent and its process group, killed together below
        )
        for node in (0, 1)
    ]


def finish(nodes: list[subprocess.Popen], out: Path, timeout: float = 240) -> None:
    for node in nodes:
        node.wait(timeout=timeout)
    logs = "\n".join((out / f"node{i}.log").read_text() for i in range(len(nodes)))
    assert all(node.returncode == 0 for node in nodes), logs


def prepared(tmp_path: Path, name: str) -> tuple[Path, dict]:
    out = tmp_path / name
    (out / "site").mkdir(parents=True)
    (out / "site" / "rehearsal_worker.py").write_text(WORKER)
    env = {**os.environ, "PYTHONPATH": str(out / "site"), "OMP_NUM_THREADS": "1", "REHEARSAL_OUT": str(out)}
    return out, env


def weights(out: Path) -> list[dict]:
    return [load_tensors(out / f"weights-rank{r}.safetensors") for r in range(4)]


def log_without_speed(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "images_per_s"} for line in lines]


# About 90 s on 2 shared CPU cores (12 process starts): `python -m pytest -m slow tests/train/test_multinode.py`
@pytest.mark.slow
def test_two_nodes_killed_and_resumed_match_one_node(tmp_path):
    # the reference: one uninterrupted 4-process run on one node
    single, env = prepared(tmp_path, "single")
    cmd = torchrun("--standalone", "--nnodes", "1", "--nproc-per-node", "4", out=single, name="quick")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    # the rehearsal: 2 nodes x 2 processes, killed after the checkpoint at step 4 ...
    multi, env = prepared(tmp_path, "multi")
    nodes = two_nodes(multi, "quick", {**env, "REHEARSAL_PAUSE_AT": "4"})
    try:
        deadline = time.time() + 240
        while len(list(multi.glob("paused-rank*.json"))) < 4:
            assert time.time() < deadline and all(n.poll() is None for n in nodes), "the nodes did not reach step 4"
            time.sleep(0.2)
        paused = [json.loads(p.read_text()) for p in sorted(multi.glob("paused-rank*.json"))]
        for node in nodes:  # a node lost: its agent and its workers at once
            os.killpg(node.pid, signal.SIGKILL)
        for worker in paused:  # torchrun starts each worker in a session of its own
            os.kill(worker["pid"], signal.SIGKILL)
        for node in nodes:
            node.wait(timeout=60)
    finally:
        for node in nodes:
            if node.poll() is None:
                os.killpg(node.pid, signal.SIGKILL)
    # it really was two nodes of two processes each
    assert sorted((p["GROUP_RANK"], p["LOCAL_RANK"]) for p in paused) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert {(p["WORLD_SIZE"], p["GROUP_WORLD_SIZE"], p["LOCAL_WORLD_SIZE"]) for p in paused} == {(4, 2, 2)}
    run = multi / "runs" / "quick"
    assert (run / "checkpoints" / "latest").read_text().strip() == "step-0000004"
    assert not list(multi.glob("weights-rank*"))

    # ... and resumed by the same two commands
    nodes = two_nodes(multi, "quick", env)
    finish(nodes, multi)
    logs = (multi / "node0.log").read_text() + (multi / "node1.log").read_text()
    assert "resumed" in logs and "step 4" in logs

    reference = weights(single)[0]
    model = load_tensors(run / "model" / "model.safetensors")
    for got in [*weights(single), *weights(multi), model]:
        assert got.keys() == reference.keys()
        assert all(torch.equal(got[k], reference[k]) for k in reference)
    assert log_without_speed(run) == log_without_speed(single / "runs" / "quick")
    assert [r["step"] for r in log_without_speed(run)] == [2, 4, 6, 8]
    ckpt = run / "checkpoints" / "step-0000008"
    assert sorted(p.name for p in ckpt.glob("rng-rank*.safetensors")) == [f"rng-rank{r}.safetensors" for r in range(4)]

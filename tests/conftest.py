"""Fixtures for every test folder. Shared code lives in tests/helpers (`from tests.helpers.recipes import ...`)."""

from __future__ import annotations

import os

import pytest
import torch

from tests.helpers.recipes import write_recipe
from tests.helpers.runs import TinyRuns


@pytest.fixture(scope="session", autouse=True)
def _one_thread_for_in_process_trainings():
    """In-process trainings take one thread, as CLI subprocesses do (ONE_THREAD): the trainer's automatic choice
    counts the cores free at its start, which on an otherwise idle machine is all of them, and a training forked
    after a multi-threaded one in the same process can hang in OpenMP (tests/train/test_robustness.py forks)."""
    if os.environ.get("OMP_NUM_THREADS"):
        yield
        return
    threads = torch.get_num_threads()
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    try:
        yield
    finally:
        del os.environ["OMP_NUM_THREADS"]
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread for a module's in-process training (tests/helpers/cli.py says why)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_recipe(tmp_path):
    return write_recipe(tmp_path)


@pytest.fixture(scope="session")
def _tiny_runs(tmp_path_factory):
    return TinyRuns(tmp_path_factory.mktemp("tiny-runs"))


@pytest.fixture(scope="session")
def tiny_run(_tiny_runs):
    """tiny_run(kind) -> the run folder of a tiny model of that kind ("aae", "aae_small", "alae", "vae", "lbae";
    tests/helpers/runs.py), trained once per test run on first use and shared: copy it before writing into it."""
    return _tiny_runs


@pytest.fixture(autouse=True)
def _shared_runs_stay_untouched(_tiny_runs):
    """Fails the test that wrote into a shared tiny run (it must work on a copy)."""
    yield
    changed = _tiny_runs.changed()
    assert not changed, f"this test wrote into the shared tiny runs {changed}: copy a run before writing into it"

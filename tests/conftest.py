"""Fixtures for every test folder. Shared code lives in tests/helpers (`from tests.helpers.recipes import ...`)."""

from __future__ import annotations

import os

import pytest
import torch

from tests.helpers.recipes import write_recipe
from tests.helpers.runs import TinyRuns


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    """Every test runs torch on one intra-op thread, and its subprocesses on one OpenMP thread unless the caller's
    OMP_NUM_THREADS says otherwise. Tiny networks gain nothing from a second thread and two stall each other on a
    busy 2-core machine (test_alae_learns_on_digits: 50 s instead of 6 s); the trainer's automatic choice takes
    every free core of an idle machine, and a training forked after a multi-threaded one in the same process can
    hang in OpenMP (tests/train/test_robustness.py forks)."""
    threads, omp = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        if omp is None:
            del os.environ["OMP_NUM_THREADS"]


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

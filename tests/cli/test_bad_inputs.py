"""Every bad input of tests/helpers/bad_inputs.py fails cleanly, and docs/bad_inputs.md is the table the code gives
today."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.bad_inputs import CASES, normalise, prepare, run_case, table
from tests.helpers.recipes import ROOT


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad")
    return folder, prepare(folder)


@pytest.mark.parametrize("what,args", CASES, ids=[c[0] for c in CASES])
def test_a_bad_input_is_one_line_and_exit_1(workspace, what, args):
    folder, names = workspace
    code, err = run_case(args, folder, names)
    assert code == 1, (what, code, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: ")
    assert not (folder / "elsewhere").exists() and not (folder.parent / "elsewhere").exists()


def test_the_recorded_table_is_current():
    recorded = (ROOT / "docs" / "bad_inputs.md").read_text()
    assert recorded == table(), "regenerate it: python tests/helpers/bad_inputs.py > docs/bad_inputs.md"


def test_normalise_hides_the_folder():
    assert normalise("in '/x/y/runs' now\n", Path("/x/y")) == "in '<tmp>/runs' now"

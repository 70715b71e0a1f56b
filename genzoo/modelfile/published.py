"""The published weights the project knows (pretrained.json): recipe name -> Hub repo and revision."""

from __future__ import annotations

from pathlib import Path

from genzoo.core.errors import GenzooError
from genzoo.core.io import read_json
from genzoo.modelfile.hub import check_repo_id

PRETRAINED_FILE = Path(__file__).with_name("pretrained.json")


def pretrained(path: Path | None = None) -> dict[str, dict]:
    """The published weights the project knows: recipe name -> {repo, revision, notes} (pretrained.json)."""
    path = Path(path or PRETRAINED_FILE)
    data = read_json(path, "pretrained weights table")
    rows = data.get("weights") if isinstance(data, dict) else None
    if not isinstance(rows, dict):
        raise GenzooError(f"'{path}' has no \"weights\" object", 'it maps recipe name -> {"repo": "org/name", ...}')
    for recipe, row in rows.items():
        if not isinstance(row, dict) or not isinstance(row.get("repo"), str):
            raise GenzooError(
                f"'{path}': row '{recipe}' needs a \"repo\" (org/name)",
                'write {"repo": "org/name", "revision": "<commit>", "notes": "..."}',
            )
        check_repo_id(row["repo"])
    return rows

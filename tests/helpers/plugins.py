"""A plugin installed by hand: the files pip leaves for a distribution with a genzoo entry point."""

from __future__ import annotations

import textwrap


def make_plugin(site, dist, module, body):
    """A real installed distribution (dist-info with an entry point), as pip would leave it."""
    (site / f"{module}.py").write_text(textwrap.dedent(body))
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[genzoo.plugins]\n{module} = {module}\n")

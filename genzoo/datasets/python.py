"""The placeholder for data given in Python (`genzoo.fit(recipe, dataset=...)`): the recipe and config.json record
`data: {name: python}`, and whatever needs the data again later must be given it again."""

from __future__ import annotations

from genzoo.core.errors import GenzooError
from genzoo.core.registry import DATASETS


@DATASETS.register("python")
def python_dataset(split: str, description: str = ""):
    """Data given in Python to genzoo.fit (not re-creatable from the recipe): pass it again where needed."""
    raise GenzooError(
        "this model was trained on a dataset given in Python"
        + (f" ({description})" if description else "")
        + f", which its recipe cannot re-create (split '{split}' asked for)",
        "pass the data again: genzoo.evaluate(model, metrics, datasets={'test': my_dataset})",
    )

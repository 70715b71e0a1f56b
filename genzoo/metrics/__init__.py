"""Metrics. `renyi` (the matrix-based estimators) has no genzoo dependencies and can be used on its own."""

from genzoo.metrics import fid, parzen, ppl, precision_recall, prior_match, reconstruction  # noqa: F401  (registers)  # noqa: F401  (registers; clean-fid loads on first use)

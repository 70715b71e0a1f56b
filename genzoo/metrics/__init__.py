"""Metrics. The matrix-based Renyi estimators they use are a package of their own, genzoo.renyi."""

from genzoo.metrics import fid, parzen, ppl, precision_recall, prior_match, reconstruction  # noqa: F401  (registers)  # noqa: F401  (registers; clean-fid loads on first use)

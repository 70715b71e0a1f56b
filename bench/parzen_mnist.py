"""Seed 002's Parzen reproduction: the validation curve of a run and its test log-likelihood for several sample
seeds (BENCHMARKS.md, "MLP AAE Parzen log-likelihood on MNIST").

    genzoo train recipes/aae_mnist.yaml data.root=path/to/mnist
    python bench/parzen_mnist.py runs/aae_mnist --data-root path/to/mnist --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("run", help="a run folder (its model/ and metrics.jsonl are read)")
    parser.add_argument("--data-root", default=None, help="MNIST folder (default: $GENZOO_DATA/mnist)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()

    import genzoo
    from genzoo.metrics.evaluate import evaluate
    from genzoo.modelfile.folder import model_revision

    run = Path(args.run)
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    print("| step | validation Parzen (train.eval) |\n|---|---|")
    for r in log:
        if "eval/log_likelihood" in r:
            print(f"| {r['step']} | {r['eval/log_likelihood']:.1f} |")
    model = genzoo.load(run)
    for seed in args.seeds:
        result = evaluate(
            model,
            ["parzen"],
            {"parzen": {"seed": seed}},
            data_root=args.data_root,
            revision=model_revision(model, run),
        )["parzen"]
        p = result["protocol"]
        print(
            f"test Parzen, sample seed {seed}: {result['log_likelihood']:.1f} ± {result['standard_error']:.1f} nats "
            f"(sigma {result['sigma']:.3f} chosen on {p['validation']['split']} x{p['validation']['images']}; "
            f"{p['images']} test images, {p['samples']} samples; model step {p['model_step']})"
        )


if __name__ == "__main__":
    main()

"""genzoo from Python: build a recipe in code, train on your own torch Dataset, load, sample, evaluate.

    python examples/python_api.py [--out runs-example] [--steps 300]

Runs in about a minute on a CPU: an adversarial autoencoder on scikit-learn's bundled 8x8 digits, given here as a
plain torch Dataset of float images in [0, 1] (any Dataset of uint8 tensors, float tensors or PIL images works).
"""

from __future__ import annotations

import argparse

import torch
from sklearn.datasets import load_digits

import genzoo


class Digits(torch.utils.data.Dataset):
    """Your own data: any torch Dataset whose items are images (or tuples starting with one)."""

    def __init__(self, images: torch.Tensor):
        self.images = images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i], 0  # (image, label): genzoo takes the first element


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="runs-example")
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()

    pixels = torch.tensor(load_digits().images, dtype=torch.float32) / 16  # (1797, 8, 8) in [0, 1]
    train_set, test_set = Digits(pixels[:1500, None]), Digits(pixels[1500:, None])

    recipe = genzoo.recipe(  # checked like a YAML recipe: a typo or a value out of range fails here
        {
            "model": {"name": "mlp_aae", "latent_dim": 4, "hidden": 256, "dropout": 0.1},
            "prior": {"name": "gaussian", "std": 2.0},
            "train": {"batch_size": 100, "steps": args.steps, "log_every": 100, "checkpoint_every": 100},
            "data": {"name": "python", "description": "sklearn digits as a torch Dataset"},
            "name": "digits-from-python",
            "output_dir": args.out,
        }
    )
    run = genzoo.fit(recipe, dataset=train_set)  # resumes if run again
    model = genzoo.load(run)
    with torch.no_grad():
        images = model.sample(16)  # (16, 1, 8, 8) in [0, 1]
        codes = model.encode(images)
    results = genzoo.evaluate(model, ["reconstruction"], datasets={"test": test_set})
    print(f"run folder: {run}")
    print(f"samples {tuple(images.shape)}, codes {tuple(codes.shape)}")
    print(f"test reconstruction MSE: {results['reconstruction']['mse']:.4f}")


if __name__ == "__main__":
    main()

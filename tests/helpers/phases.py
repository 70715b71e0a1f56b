"""One check shared by the trainer's and the models' tests: a phase moves only the modules it names."""

import torch


def assert_each_phase_changes_only_its_modules(trainer, x: torch.Tensor) -> None:
    """Run each of the set-up trainer's phases alone on batch `x`: the parameters that changed are exactly those
    of the phase's modules."""
    from genzoo.train.trainer import Trainer

    for phase in trainer.phases:
        before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
        only = Trainer.__new__(Trainer)
        only.__dict__.update(trainer.__dict__, phases=[phase])
        only._train_step(x)
        changed = {n.split(".")[0] for n, p in trainer.model.named_parameters() if not torch.equal(before[n], p)}
        assert changed == set(phase.modules), (phase.name, changed)

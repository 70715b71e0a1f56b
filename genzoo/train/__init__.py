"""The one trainer, its checkpoints, EMA and data order."""

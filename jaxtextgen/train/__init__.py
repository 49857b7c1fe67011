"""The generic training loop: parallelism, checkpoints, metric writing."""

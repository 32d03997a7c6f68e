"""Model commands: train, eval, rank, compare."""

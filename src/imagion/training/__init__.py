"""Training: options, the account split, losses and the epoch loop (CUDA, mixed precision, DDP, CPU)."""

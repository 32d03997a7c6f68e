"""Models: the networks, their registry, self-describing checkpoints, preprocessing and calibration, and the decoded-image and feature caches."""

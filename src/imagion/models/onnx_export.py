"""The one ONNX exporter: a module taking N×3×S×S images, exported with a dynamic batch axis
(opset 17, the TorchScript exporter), for the scoring engine's model and the feature cache's
backbone alike."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch


def export_module(net: torch.nn.Module, path: Path, size: int, outputs: list[str]) -> Path:
    """Write `net` to `path` as ONNX: input `x` (n×3×size×size), the named outputs, `n` free."""
    axes = {"x": {0: "n"}} | {name: {0: "n"} for name in outputs}
    with warnings.catch_warnings():  # the exporter's notes on constant folding mean nothing here
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            (torch.zeros(2, 3, size, size),),
            str(path),
            dynamo=False,
            input_names=["x"],
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=17,
        )
    return path

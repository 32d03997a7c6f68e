"""Inference: engines (ONNX Runtime, PyTorch), parallel decoding, rank/compare and the upload server."""

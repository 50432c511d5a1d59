"""Checkpoint -> verified ONNX -> TensorRT engine."""

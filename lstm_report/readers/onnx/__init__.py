"""ONNX files: LSTM and GRU nodes, their constant inputs, and what parsing would cost."""

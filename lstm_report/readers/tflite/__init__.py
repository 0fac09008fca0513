"""TFLite / LiteRT flatbuffers: their LSTM operators."""

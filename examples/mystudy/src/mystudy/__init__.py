"""An example study: its own attribution method, ONNX model and pairs table, checked by faceattr."""

"""Serving package: a gRPC front end over an onnxruntime seq2seq engine. Never imports torch."""

__version__ = "0.1.0"

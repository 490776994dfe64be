"""The inference engine: tokenize, schedule, run, decode. Knows nothing of gRPC."""

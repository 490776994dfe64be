"""The gRPC front end: servicers, status mapping, interceptors. Knows nothing of onnxruntime."""

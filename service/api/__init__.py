"""The gRPC front end: a converter over the front door (servicer, converters), the status
table, interceptors (RED metrics, access log, bearer auth). Knows nothing of onnxruntime."""

grpcurl -plaintext -d '{"text": "A tool to compress files", "target_language": "fr"}' localhost:50051 seq2seq.v1.Seq2Seq/Translate
grpcurl -plaintext localhost:50051 seq2seq.v1.Seq2Seq/ListModels

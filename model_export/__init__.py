"""Train, export and evaluate attention seq2seq models into serving bundles.

Stages, one module each: tokenizer -> model -> train -> export -> parity -> evaluate -> cli.
This package may import torch; the serving package (`service/`) never does.
"""

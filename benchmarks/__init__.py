"""Benchmarks and the GPU check: scripts that print figures and write JSON, never tests."""

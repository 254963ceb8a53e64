"""Benchmarks of the token service (run them through the executables in this folder)."""

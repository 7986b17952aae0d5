"""Benchmarks (numbers into BENCHMARKS.md)."""

"""Benchmarks: timing harness and tables, and the race against other implementations."""

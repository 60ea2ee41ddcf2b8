"""Benchmarks of conveyor (and of DLRN 0.26.1 on the same work): see bench/__main__.py."""

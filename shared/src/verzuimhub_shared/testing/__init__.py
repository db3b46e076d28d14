"""Test support shared by every service's tests, the end-to-end tests and the benchmarks."""

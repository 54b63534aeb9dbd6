"""Eval set, metrics and benchmarks for the service."""

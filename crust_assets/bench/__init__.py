"""Benchmarks run by ``make bench``: plain functions that return their figures as dicts."""

"""Benchmarks of inrcodec: the harness (codecs, runs, results), BD metrics and plots.

A package so that tests can import it from the repository root; the scripts in this
folder still run as `python benchmarks/NAME.py`. One-off studies live in
benchmarks/experiments/ (scripts only); the index of results is benchmarks/results/README.md.
"""

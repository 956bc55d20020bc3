"""Benchmarks of inrcodec: the harness (codecs, runs, results), BD metrics and plots.

A package so that tests can import it from the repository root; the scripts in this
folder still run as `python benchmarks/NAME.py`. Studies that a release re-runs live in
benchmarks/studies/ (scripts, each tested end to end on a tiny input by
tests/test_studies.py); the index of results is benchmarks/results/README.md.
"""

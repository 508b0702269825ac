"""neckcheck benchmarks: `make bench` runs benchmarks/run.py (see benchmarks/README.md)."""

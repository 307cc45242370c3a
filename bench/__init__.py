"""Speed and quality benchmarks: `python -m bench.latency`, `bench.parallel_vs_ltr`, `bench.profile` (see BENCHMARKS.md)."""

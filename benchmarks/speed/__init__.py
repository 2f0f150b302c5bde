"""Speed and memory benchmarks (`make bench-speed`); run each module with `python -m`."""

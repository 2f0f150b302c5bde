"""Builds at the paper's scale, rehearsed on a local dask cluster (``make bench-scale``)."""

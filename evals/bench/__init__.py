"""Benchmarks: each prints one JSON object as its last line (see `bench/` and `streamdesk bench`)."""

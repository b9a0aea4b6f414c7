"""Benchmarks: lanthorn side by side with nginx and `python -m http.server`."""

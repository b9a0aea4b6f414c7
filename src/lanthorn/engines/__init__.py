"""Engines: the I/O and concurrency models. Each is a short loop around the driver."""

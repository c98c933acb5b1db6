"""Benchmarks run against the system started the way users start it (`pressroom up`)."""

"""Benchmarks that use the public API only; each module is an ``ebv-cl bench`` subcommand."""

"""Sub-benchmarks of `popmusicnet bench`, one module each (see studio.cli.commands.bench)."""

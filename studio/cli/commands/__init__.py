"""Subcommands of `popmusicnet`, one module each (see studio.cli)."""

"""anvild: keeps the history of every test run, locally and in CI."""

__version__ = "0.1.0"

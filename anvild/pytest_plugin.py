"""pytest plugin entry point (``pytest11``), reserved for turning on reports in watched projects.

It registers nothing yet, so it costs nothing in any pytest session.
"""

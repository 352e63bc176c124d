"""anvild's pytest plugin: each session in a watched project records itself.

A package of its own that needs only pytest and the standard library, so that it can be
installed into any environment that runs a project's tests (a `.venv`, tox, the system
pytest) without touching that environment's pins; `anvild` itself, the daemon and the CLI,
lives wherever its user installed the tool (pipx, uv). See anvild_pytest.plugin.
"""

__version__ = "1"

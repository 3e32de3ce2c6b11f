"""The ``deadstock`` command line: one module per command group over the app's functions."""

"""The pricing team's dashboard (Streamlit), a client of the REST API only.

``deadstock dashboard`` runs :mod:`service.dashboard.app`. Every page talks to the API through
:class:`service.dashboard.client.ApiClient`; the dashboard never opens the database nor imports
the domain packages (a ``forbidden`` contract in ``pyproject.toml`` checks it). See
docs/service.md.
"""

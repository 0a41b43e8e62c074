"""The `qbank` command's groups, one module per domain; :mod:`qbank.server.cli` puts them together."""

"""The supervisor review page: server-rendered HTML under /review."""

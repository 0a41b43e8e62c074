"""Supervisor review: key-node records (§22), incidents (§29–§31), sign-off into the supervision form."""

"""The question bank service: items, blueprints, layouts, the audit trail and the HTTP API."""

"""Video audit engine: probe, analyse, coverage, retention archive. Never imports qbank."""

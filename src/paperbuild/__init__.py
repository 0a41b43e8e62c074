"""Paper assembly engine: plain data in, papers out (OR-Tools CP-SAT). Never imports qbank."""

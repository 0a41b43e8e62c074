"""``python -m benchmarks.assembly``: see run.py."""

from benchmarks.assembly.run import main

raise SystemExit(main())

"""`python -m codeloop.cli` runs the `codeloop` command."""

from . import main

raise SystemExit(main())

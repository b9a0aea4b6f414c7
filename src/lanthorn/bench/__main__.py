"""`python -m lanthorn.bench` is `lanthorn bench`."""

from lanthorn.bench.cli import main

raise SystemExit(main())

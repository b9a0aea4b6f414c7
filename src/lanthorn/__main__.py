"""`python -m lanthorn` runs the command line."""

from lanthorn.cli import main

raise SystemExit(main())

"""`python -m brokercert.cli`: the same as the `brokercert` command."""

from brokercert.cli import main

main()

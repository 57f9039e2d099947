"""`python -m frontload.cli` runs the `fl` command."""

from frontload.cli import main

main()

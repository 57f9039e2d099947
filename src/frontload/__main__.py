"""`python -m frontload` runs the `fl` command."""

from frontload.cli import main

main()

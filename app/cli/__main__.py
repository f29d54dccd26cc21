"""`python -m app.cli`: the `sesame` command."""

from app.cli import main

main()

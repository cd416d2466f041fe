"""`python -m loadtests` = `live-loadtest` (see loadtests/cli.py)."""
from loadtests.cli import main

if __name__ == "__main__":
    raise SystemExit(main())

"""The ``canary`` console script: the Rust ``canary`` command, run from the extension module."""

import sys

from ._canary import cli_main


def main() -> None:
    """Run the ``canary`` command with this process's arguments and exit with its code."""
    sys.exit(cli_main(sys.argv))

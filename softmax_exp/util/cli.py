"""What the project's command lines share."""

from __future__ import annotations

import argparse


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (exit status 2), without the usage block."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}; see --help\n")

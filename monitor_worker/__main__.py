import sys

from .main import cli

# Guarded: the outlier fit runs in a spawned child process, which imports this module.
if __name__ == "__main__":
    sys.exit(cli())

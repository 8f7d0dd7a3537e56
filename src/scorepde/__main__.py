"""``python -m scorepde ...``: the same command-line interface as the ``scorepde`` script."""

from scorepde.cli import app

if __name__ == "__main__":  # pragma: no branch
    app(prog_name="scorepde")

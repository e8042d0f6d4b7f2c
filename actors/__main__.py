"""``python -m actors``: the ``masterless`` command."""

import sys

from actors._cli import main

if __name__ == "__main__":
    sys.exit(main())

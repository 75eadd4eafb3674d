"""``python -m genrekit.cli``: the same as the ``genrekit`` command."""

import sys

from genrekit.cli import main

if __name__ == "__main__":  # not when documentation tools import it
    sys.exit(main())

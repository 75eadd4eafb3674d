"""``python -m genrekit``: the same as the ``genrekit`` command."""

import sys

from genrekit.cli import main

sys.exit(main())

"""``python -m interface.cli``: the ``responses`` command."""

import sys

from interface.cli import main

sys.exit(main())

"""``python -m govsoc``."""

import sys

from govsoc.cli import main

sys.exit(main())

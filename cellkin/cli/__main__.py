"""``python -m cellkin.cli`` runs the command line (as ``python -m cellkin`` does)."""

import sys

from cellkin.cli import main

sys.exit(main())

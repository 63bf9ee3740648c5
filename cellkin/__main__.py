"""``python -m cellkin`` runs the command line."""

import sys

from cellkin.cli import main

sys.exit(main())

"""``python -m lowprec`` runs the ``lowprec`` command (and lets ``torchrun -m lowprec`` start it)."""

import sys

from .cli import main

sys.exit(main())

"""``python -m idp`` runs the admin command."""

import sys

from idp.cli import main

sys.exit(main())

"""``python -m memory.api``: see ``memory.api.cli``."""
import sys

from memory.api.cli import main

sys.exit(main())

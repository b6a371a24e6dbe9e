"""``python -m mmbench``."""

import sys

from mmbench.cli import main

sys.exit(main())

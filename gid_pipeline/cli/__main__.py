"""``python -m gid_pipeline.cli``."""

import sys

from . import main

sys.exit(main())

"""``python -m pooledcrawl``."""

import sys

from pooledcrawl.cli import main

sys.exit(main())

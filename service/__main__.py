"""``python -m service [serve ...]`` starts the server."""

import sys

from service.cli import main

sys.exit(main())

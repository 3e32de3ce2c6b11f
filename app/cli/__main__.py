"""``python -m app.cli``: the ``deadstock`` command."""

import sys

from app.cli.main import main

sys.exit(main())

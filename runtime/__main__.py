"""``python -m runtime``."""

import sys

if sys.argv[1:2] == ["health"]:
    # The container's health check: the standard library only, no command line to build.
    from runtime.health import main as health

    sys.exit(health(sys.argv[2:]))

from runtime.cli import main

sys.exit(main())

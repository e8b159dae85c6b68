"""`python -m meshctl.server ...` is `meshctl agent ...`."""

import sys

from meshctl.server.run import main

raise SystemExit(main(sys.argv[1:]))

"""`python -m demo` (what `make demo` runs)."""

import sys

from demo.life_cycle import main

sys.exit(main())

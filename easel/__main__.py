import sys

from easel.cli import main

sys.exit(main())

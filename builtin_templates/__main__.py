"""``python -m builtin_templates``: the built-in templates' catalogue as JSON on stdout (what admin reads)."""

import json
import sys

from builtin_templates import catalogue

json.dump(catalogue(), sys.stdout)

"""An import-linter contract type that reads like the design's layout table: what a folder *may* import.

``type = "allowed"``: every module under ``source_modules`` imports only the standard library, its own
package, ``allowed_modules`` (top-level names) and ``pending_modules`` (imports there today that are to go,
kept apart so the layout table is compared with what is meant, not with what is tolerated). With ``external = "unchecked"``, third-party packages
are free and only imports of the project's own packages are checked (services may use any library; they
may not import each other). Indirect imports through an allowed package are fine: the rule is about
what a folder's own code names.

Used from ``pyproject.toml``'s ``[tool.importlinter]`` (``contract_types``); run with
``PYTHONPATH=.:tests lint-imports`` (``tests/test_import_contract.py`` does, in ``make test``).
"""

from __future__ import annotations

import sys

from grimp import ImportGraph
from importlinter import Contract, ContractCheck, fields, output


class AllowedImportsContract(Contract):
    type_name = "allowed"

    source_modules = fields.ListField(subfield=fields.ModuleField())
    allowed_modules = fields.ListField(subfield=fields.StringField(), default=[])
    pending_modules = fields.ListField(subfield=fields.StringField(), default=[])
    external = fields.StringField(default="checked")

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        allowed = set(self.allowed_modules) | set(self.pending_modules)  # type: ignore[arg-type]
        check_external = self.external != "unchecked"
        violations = []
        for source in self.source_modules:  # type: ignore[attr-defined]
            root = source.name
            for importer in sorted({root} | graph.find_descendants(root)):
                for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                    top = imported.split(".")[0]
                    external = graph.is_module_squashed(top) if top in graph.modules else False
                    if top == root or top in sys.stdlib_module_names or top in allowed:
                        continue
                    if external and not check_external:
                        continue
                    lines = sorted(d["line_number"] for d in graph.get_import_details(importer=importer,
                                                                                        imported=imported))
                    violations.append({"importer": importer, "imported": imported, "lines": lines})
        return ContractCheck(kept=not violations, metadata={"violations": violations})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for item in check.metadata["violations"]:
            lines = ", ".join(f"l.{n}" for n in item["lines"])
            output.print_error(f"{item['importer']} is not allowed to import {item['imported']} ({lines})",
                               bold=False)
        output.new_line()

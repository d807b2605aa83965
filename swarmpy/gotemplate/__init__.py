"""A small Go text/template: the forms docker users write in `--format` and in service templates.

Theory of operation. `parse(text)` lexes the text into plain text and `{{ actions }}` (with `{{-`/`-}}`
trimming and `{{/* comments */}}`), and parses the actions into a tree: output of a pipeline, `if`/`else
if`/`else`, `range` (optionally `$i, $v :=`, with `else`; `break`/`continue`), `with`, `$x :=`
declarations, and named templates (`define`, `template "name" pipeline`, `block`). A pipeline
is commands joined by `|`; a command is a function with arguments (the piped value goes last) or a
single operand: `.`, a field chain `.A.B`, a variable `$x.A`, a literal, or `( pipeline ).A`.
`Template.execute(data)` walks the tree over plain Python data (dicts, lists, str, int, float, bool,
None) and prints values as Go's fmt %v does (`[a b]`, `map[k:v]`, `<no value>`).

Errors read as Go's: parse errors as `template: :1: unclosed action`, execution errors as
`template: :1:2: executing "" at <.Nope>: ...`. Objects that are not dicts can take part by defining
`template_field(name)`; raising KeyError from it says the field does not exist, as Go says of a struct.
A field that is a Python callable is a method: `{{.Label "k"}}` calls it with the arguments.

Functions: Go's builtins (and, or, not, len, index, slice, eq, ne, lt, le, gt, ge, print, printf, println)
and docker's (json, join, split, lower, upper, title, pad, truncate), plus any the caller adds.

Layout: parser.py (errors, lexing, the tree, the parser) and executor.py (Go's value printing, the
functions, the executor); this module joins them: `parse` and `Template`, and the public names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .executor import BUILTINS, _Executor, go_format, go_json, truthy
from .parser import MISSING, TemplateError, TemplateExecError, _Parser

__all__ = ["BUILTINS", "MISSING", "Template", "TemplateError", "TemplateExecError", "go_format", "go_json",
           "parse", "truthy"]


@dataclass
class Template:
    source: str
    nodes: list
    functions: dict[str, Callable]
    templates: dict[str, list] = field(default_factory=dict)

    def execute(self, data: Any, missing_key: Callable[[dict, str], Any] | None = None) -> str:
        """Apply to `data`. `missing_key(mapping, name)` gives a map's missing key a value, or raises
        KeyError(reason) to fail; by default it is the map's zero value, as Go does."""
        out: list[str] = []
        try:
            _Executor(self.source, self.functions, data, missing_key, self.templates).run(self.nodes, data, out)
        except RecursionError:
            raise TemplateExecError("template: :1: exceeded maximum template depth") from None
        return "".join(out)


def parse(text: str, functions: dict[str, Callable] | None = None) -> Template:
    """Parse a template; raises TemplateError with Go's wording (`template: :1: ...`)."""
    table = dict(BUILTINS)
    table.update(functions or {})
    parser = None
    try:
        parser = _Parser(text, table)
        nodes = parser.parse()
    except TemplateError as error:
        line = text.count("\n", 0, error.pos or 0) + 1
        raise TemplateError(f"template: :{line}: {error}") from None
    return Template(text, nodes, table, parser.templates)

"""The executing half of swarmpy.gotemplate (see its theory of operation): values printed as Go's fmt
prints them, the builtin and docker functions, and the executor that walks a parsed tree (parser.py)
over plain Python data."""

from __future__ import annotations

import json
import re
from typing import Any, Callable

from .parser import (
    MISSING, TemplateExecError, _Action, _Branch, _Break, _Call, _Continue, _LoopControl, _Operand, _Pipeline, _Text,
)


# ---------------------------------------------------------------- values as Go prints them


def go_format(value: Any) -> str:
    """fmt's %v for plain data."""
    if value is MISSING:
        return "<no value>"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value)) if abs(value) < 1e6 else f"{value:.0e}".replace("e+0", "e+0")
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(go_format(item) for item in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{key}:{go_format(value[key])}" for key in sorted(value)) + "]"
    return str(value)


def go_json(value: Any) -> str:
    """docker's `json` function: Go's json.Marshal (compact, <, > and & escaped)."""
    if value is MISSING:
        value = None
    text = json.dumps(_map_order(value), separators=(",", ":"), ensure_ascii=False, default=_jsonable)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _map_order(value: Any) -> Any:
    """Go marshals a map with its keys sorted and a struct in field order; a dict of strings only
    (labels, options) stands for a map, any other dict for a struct."""
    if isinstance(value, dict):
        keys = sorted(value) if value and all(isinstance(v, str) for v in value.values()) else list(value)
        return {key: _map_order(value[key]) for key in keys}
    if isinstance(value, (list, tuple)):
        return [_map_order(item) for item in value]
    return value


def _jsonable(value: Any) -> Any:
    if hasattr(value, "template_json"):
        return value.template_json()
    raise TypeError(f"cannot encode {type(value).__name__}")


def truthy(value: Any) -> bool:
    """Go's notion of a non-empty value."""
    if value is MISSING or value is None:
        return False
    if isinstance(value, (bool, int, float, str, list, tuple, dict)):
        return bool(value)
    return True


def _type_name(value: Any) -> str:
    if hasattr(value, "template_type"):
        return value.template_type
    return {str: "string", int: "int", float: "float64", bool: "bool", list: "[]interface {}",
            tuple: "[]interface {}", dict: "map[string]interface {}"}.get(type(value), type(value).__name__)


# ---------------------------------------------------------------- functions


def _index(item: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(item, dict):
            if key in item:
                item = item[key]
            else:
                item = _zero_of_map(item)
        elif isinstance(item, (list, tuple, str)):
            if not isinstance(key, int) or not 0 <= key < len(item):
                raise TemplateExecError(f"error calling index: index out of range: {key}")
            item = ord(item[key]) if isinstance(item, str) else item[key]  # Go indexes a string's bytes
        elif item is None or item is MISSING:
            raise TemplateExecError("error calling index: index of untyped nil")
        else:
            raise TemplateExecError(f"error calling index: can't index item of type {_type_name(item)}")
    return item


def _slice(item: Any, *indexes: Any) -> Any:
    """Go's slice: `slice x 1 2` is x[1:2]; a string slices its bytes (3 indexes only for lists)."""
    if item is None or item is MISSING:
        raise TemplateExecError("error calling slice: slice of untyped nil")
    if not isinstance(item, (list, tuple, str)):
        raise TemplateExecError(f"error calling slice: can't slice item of type {_type_name(item)}")
    if len(indexes) > 3 or (isinstance(item, str) and len(indexes) == 3):
        raise TemplateExecError(f"error calling slice: too many slice indexes: {len(indexes)}")
    bounds = []
    for index in indexes:
        if not isinstance(index, int) or isinstance(index, bool):
            raise TemplateExecError(f"error calling slice: cannot index slice/array with type {_type_name(index)}")
        if not 0 <= index <= len(item):
            raise TemplateExecError(f"error calling slice: index out of range: {index}")
        bounds.append(index)
    for low, high in zip(bounds, bounds[1:]):
        if low > high:
            raise TemplateExecError(f"error calling slice: invalid slice index: {low} > {high}")
    start = bounds[0] if bounds else 0
    end = bounds[1] if len(bounds) > 1 else len(item)
    if isinstance(item, str):
        return item.encode("utf-8")[start:end].decode("utf-8", "replace")
    return list(item[start:end])


def _zero_of_map(mapping: dict) -> Any:
    """A missing key gives the map's zero value: "" in a map of strings (labels), else <no value>."""
    return "" if all(isinstance(value, str) for value in mapping.values()) else MISSING


def _length(item: Any) -> int:
    if isinstance(item, (str, list, tuple, dict)):
        return len(item)
    raise TemplateExecError(f"error calling len: len of type {_type_name(item)}")


def _compare(name: str, check: Callable[[Any, Any], bool]) -> Callable[..., bool]:
    def compare(first: Any, *others: Any) -> bool:
        if not others:
            raise TemplateExecError(f"wrong number of args for {name}: want at least 2 got 1")
        if name == "eq":
            return any(first == other for other in others)
        if type(first) is not type(others[0]) and not all(isinstance(v, (int, float)) for v in (first, others[0])):
            raise TemplateExecError(f"error calling {name}: incompatible types for comparison")
        return check(first, others[0])

    return compare


def _sprint(*values: Any) -> str:
    parts = []
    for index, value in enumerate(values):
        if index and not isinstance(value, str) and not isinstance(values[index - 1], str):
            parts.append(" ")
        parts.append(go_format(value))
    return "".join(parts)


_VERB = re.compile(r"%([-+# 0]*\d*(?:\.\d+)?)([vsdqtfgex%])")


def _sprintf(pattern: str, *values: Any) -> str:
    remaining = list(values)

    def one(match: re.Match) -> str:
        flags, verb = match.groups()
        if verb == "%":
            return "%"
        if not remaining:
            return f"%!{verb}(MISSING)"
        value = remaining.pop(0)
        if verb in "vst":
            return ("%" + flags + "s") % go_format(value)
        if verb == "q":
            return json.dumps(go_format(value))
        if verb == "d" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return ("%" + flags + "d") % value
        if verb in "fge" and isinstance(value, (int, float)):
            return ("%" + flags + verb) % value
        if verb == "x" and isinstance(value, int):
            return ("%" + flags + "x") % value
        return f"%!{verb}({_type_name(value)}={go_format(value)})"

    return _VERB.sub(one, pattern)


def _title(text: str) -> str:
    return re.sub(r"(^|[^\w'])(\w)", lambda m: m.group(1) + m.group(2).upper(), text)


def _truncate(text: str, length: int) -> str:
    return text[:length] if len(text) > length else text


def _pad(text: str, before: int, after: int) -> str:
    return " " * before + text + " " * after


def _join(items: Any, separator: str) -> str:
    if not isinstance(items, (list, tuple)):
        raise TemplateExecError(f"error calling join: wrong type for value; expected []string; got {_type_name(items)}")
    return separator.join(go_format(item) for item in items)


BUILTINS: dict[str, Callable[..., Any]] = {
    "and": None,  # short-circuits: evaluated by the executor
    "or": None,
    "not": lambda value: not truthy(value),
    "len": _length,
    "index": _index,
    "slice": _slice,
    "eq": _compare("eq", lambda a, b: a == b),
    "ne": lambda a, b: a != b,
    "lt": _compare("lt", lambda a, b: a < b),
    "le": _compare("le", lambda a, b: a <= b),
    "gt": _compare("gt", lambda a, b: a > b),
    "ge": _compare("ge", lambda a, b: a >= b),
    "print": _sprint,
    "printf": _sprintf,
    "println": lambda *values: " ".join(go_format(v) for v in values) + "\n",
    # docker's own (docker/cli templates): the ones `--format` users reach for
    "json": go_json,
    "join": _join,
    "split": lambda text, separator: text.split(separator),
    "lower": lambda text: text.lower(),
    "upper": lambda text: text.upper(),
    "title": _title,
    "pad": _pad,
    "truncate": _truncate,
}


# ---------------------------------------------------------------- execution


class _Executor:
    def __init__(self, source: str, functions: dict[str, Callable], root: Any,
                 missing_key: Callable[[dict, str], Any] | None = None,
                 templates: dict[str, list] | None = None) -> None:
        self.source = source
        self.templates = templates or {}
        self.depth = 0
        self.functions = functions
        self.missing_key = missing_key or (lambda mapping, name: _zero_of_map(mapping))
        self.scopes: list[dict[str, Any]] = [{"$": root}]

    def _where(self, pos: int) -> str:
        line = self.source.count("\n", 0, pos) + 1
        column = pos - (self.source.rfind("\n", 0, pos) + 1)
        return f"template: :{line}:{column}"

    def fail(self, operand: _Operand, reason: str) -> TemplateExecError:
        return TemplateExecError(f'{self._where(operand.pos)}: executing "" at <{operand.text}>: {reason}')

    def run(self, nodes: list, dot: Any, out: list[str]) -> None:
        for node in nodes:
            if isinstance(node, _Text):
                out.append(node.text)
            elif isinstance(node, _Action):
                value = self.pipeline(node.pipeline, dot)
                if not node.pipeline.declarations:
                    out.append(go_format(value))
            elif isinstance(node, _LoopControl):
                raise _Break() if node.word == "break" else _Continue()
            elif isinstance(node, _Call):
                self.call_template(node, dot, out)
            else:
                self.branch(node, dot, out)

    def call_template(self, node: _Call, dot: Any, out: list[str]) -> None:
        """A named template, with the pipeline's value (nil without one) as its dot and its own $."""
        where = f'{self._where(node.pos)}: executing "" at <{node.text}>'
        if node.name not in self.templates:
            raise TemplateExecError(f'{where}: template "{node.name}" not defined')
        if self.depth >= _MAX_TEMPLATE_DEPTH:  # Go's maxExecDepth
            raise TemplateExecError(f"{where}: exceeded maximum template depth ({_MAX_TEMPLATE_DEPTH})")
        value = self.pipeline(node.pipeline, dot) if node.pipeline is not None else MISSING
        scopes, self.scopes = self.scopes, [{"$": value}]
        self.depth += 1
        try:
            self.run(self.templates[node.name], value, out)
        finally:
            self.scopes = scopes
            self.depth -= 1

    def branch(self, node: _Branch, dot: Any, out: list[str]) -> None:
        self.scopes.append({})
        try:
            if node.kind == "range":
                self._range(node, dot, out)
                return
            value = self.pipeline(node.pipeline, dot)
            if truthy(value):
                self.run(node.body, value if node.kind == "with" else dot, out)
            else:
                self.run(node.otherwise, dot, out)
        finally:
            self.scopes.pop()

    def _range(self, node: _Branch, dot: Any, out: list[str]) -> None:
        declarations, node.pipeline.declarations = node.pipeline.declarations, []
        try:
            value = self.pipeline(node.pipeline, dot)
        finally:
            node.pipeline.declarations = declarations
        if isinstance(value, dict):
            pairs = [(key, value[key]) for key in sorted(value)]
        elif isinstance(value, (list, tuple)):
            pairs = list(enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            pairs = [(i, i) for i in range(value)]
        elif value is None or value is MISSING:
            pairs = []
        else:
            raise TemplateExecError(f"range can't iterate over {go_format(value)}")
        if not pairs:
            self.run(node.otherwise, dot, out)
            return
        for key, item in pairs:
            if len(declarations) == 1:
                self.scopes[-1][declarations[0]] = item
            elif len(declarations) == 2:
                self.scopes[-1][declarations[0]] = key
                self.scopes[-1][declarations[1]] = item
            try:
                self.run(node.body, item, out)
            except _Continue:
                continue
            except _Break:
                break

    def pipeline(self, pipeline: _Pipeline, dot: Any) -> Any:
        value: Any = _NO_ARGUMENT
        for command in pipeline.commands:
            value = self.command(command, dot, value)
        for name in pipeline.declarations:
            self.scopes[-1][name] = value
        return value

    def command(self, command: list[_Operand], dot: Any, piped: Any) -> Any:
        head = command[0]
        if head.kind == "ident":
            return self.call(head, command[1:], dot, piped)
        if len(command) > 1 or piped is not _NO_ARGUMENT:
            method = self.operand(head, dot) if head.kind == "field" else None
            if not callable(method):
                raise self.fail(head, f"can't give argument to non-function {head.text}")
            # A method with arguments, as docker's formatter contexts have (`{{.Label "com.example"}}`).
            args = [self.operand(a, dot) for a in command[1:]]
            if piped is not _NO_ARGUMENT:
                args.append(piped)
            try:
                return method(*args)
            except TypeError:
                raise self.fail(head, f"wrong number of args for {head.chain[-1]}: got {len(args)}") from None
        return self.operand(head, dot)

    def call(self, head: _Operand, arguments: list[_Operand], dot: Any, piped: Any) -> Any:
        name = head.value
        if name in ("and", "or"):
            values = [lambda a=a: self.operand(a, dot) for a in arguments]
            if piped is not _NO_ARGUMENT:
                values.append(lambda: piped)
            if not values:
                raise self.fail(head, f"wrong number of args for {name}: want at least 1 got 0")
            result = None
            for get in values:
                result = get()
                if truthy(result) == (name == "or"):
                    return result
            return result
        args = [self.operand(a, dot) for a in arguments]
        if piped is not _NO_ARGUMENT:
            args.append(piped)
        try:
            return self.functions[name](*args)
        except TemplateExecError as error:
            raise self.fail(head, str(error)) from None
        except TypeError:
            raise self.fail(head, f"wrong number of args for {name}: got {len(args)}") from None
        except (AttributeError, ValueError) as error:
            raise self.fail(head, f"error calling {name}: {error}") from None

    def operand(self, operand: _Operand, dot: Any) -> Any:
        kind = operand.kind
        if kind == "literal":
            base = operand.value
        elif kind == "dot" or kind == "field":
            base = dot
        elif kind == "variable":
            base = self.variable(operand)
        elif kind == "pipe":
            base = self.pipeline(operand.value, dot)
        else:
            raise self.fail(operand, f"can't use function {operand.value} as a value")
        for name in operand.chain:
            base = self.field(operand, base, name)
        return base

    def variable(self, operand: _Operand) -> Any:
        for scope in reversed(self.scopes):
            if operand.value in scope:
                return scope[operand.value]
        raise self.fail(operand, f"undefined variable: {operand.value}")

    def field(self, operand: _Operand, value: Any, name: str) -> Any:
        if isinstance(value, dict):
            if name in value:
                return value[name]
            try:
                return self.missing_key(value, name)
            except KeyError as missing:
                raise self.fail(operand, missing.args[0]) from None
        if hasattr(value, "template_field"):
            try:
                return value.template_field(name)
            except KeyError:
                raise self.fail(operand, f"can't evaluate field {name} in type {_type_name(value)}") from None
        if value is MISSING or value is None:
            raise self.fail(operand, f"nil pointer evaluating interface {{}}.{name}")
        raise self.fail(operand, f"can't evaluate field {name} in type {_type_name(value)}")


_NO_ARGUMENT = object()
_MAX_TEMPLATE_DEPTH = 100  # Go allows 100000 nested calls; Python's stack far fewer

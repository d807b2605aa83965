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
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable


class TemplateError(ValueError):
    """The template did not parse (bad syntax or an unknown function); `pos`: where, for the line."""

    pos: int | None = None


def _at(error: TemplateError, pos: int) -> TemplateError:
    if error.pos is None:
        error.pos = pos
    return error


class TemplateExecError(ValueError):
    """The template parsed but could not be applied to the data."""


class _Missing:
    """A map's missing key: Go prints the zero interface as `<no value>`."""

    def __repr__(self) -> str:
        return "<no value>"


MISSING = _Missing()

# ---------------------------------------------------------------- lexing

_TOKEN = re.compile(
    r"""(?P<space>\s+)
      | (?P<declare>:=)
      | (?P<assign>=)
      | (?P<pipe>\|)
      | (?P<lparen>\()
      | (?P<rparen>\))
      | (?P<comma>,)
      | (?P<string>"(?:[^"\\\n]|\\.)*")
      | (?P<raw>`[^`]*`)
      | (?P<number>[-+]?(?:0[xX][0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?))
      | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+)
      | (?P<dot>\.)
      | (?P<variable>\$[A-Za-z0-9_]*)
      | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    """,
    re.VERBOSE,
)


@dataclass
class _Token:
    kind: str
    text: str
    pos: int  # offset in the whole template, for error positions


def _tokenize(action: str, offset: int) -> list[_Token]:
    tokens = []
    index = 0
    while index < len(action):
        match = _TOKEN.match(action, index)
        if not match:
            char = action[index]
            raise TemplateError(f"bad character U+{ord(char):04X} '{char}'")
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(_Token(kind, match.group(), offset + index))
        index = match.end()
        # a field chain may follow a variable or a parenthesis without a space: `$x.A`, `(...).A`
    return tokens


# ---------------------------------------------------------------- the tree


@dataclass
class _Operand:
    kind: str            # "dot", "field", "variable", "literal", "ident", "pipe"
    value: Any = None    # the literal, the variable or function name, or the sub-pipeline
    chain: list[str] = field(default_factory=list)  # field names applied after it
    text: str = ""       # as written, for error messages
    pos: int = 0


@dataclass
class _Pipeline:
    declarations: list[str]
    commands: list[list[_Operand]]
    pos: int = 0
    text: str = ""


@dataclass
class _Text:
    text: str


@dataclass
class _Action:
    pipeline: _Pipeline


@dataclass
class _LoopControl:
    word: str  # "break" or "continue"


@dataclass
class _Call:
    """{{template "name" pipeline}} (and the call half of {{block}})."""
    name: str
    pipeline: _Pipeline | None
    text: str
    pos: int


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


@dataclass
class _Branch:
    kind: str  # "if", "range", "with"
    pipeline: _Pipeline
    body: list
    otherwise: list


def _lex(text: str) -> list[tuple[str, str, int]]:
    """[("text", s, pos) | ("action", inner, pos)] with trim markers applied."""
    items: list[tuple[str, str, int]] = []
    index = 0
    trim_next = False
    while True:
        start = text.find("{{", index)
        chunk = text[index:] if start < 0 else text[index:start]
        if trim_next:
            chunk = chunk.lstrip()
        if start < 0:
            if chunk:
                items.append(("text", chunk, index))
            return items
        inner_start = start + 2
        trim_before = text.startswith("-", inner_start) and inner_start + 1 < len(text) and text[inner_start + 1].isspace()
        if trim_before:
            chunk = chunk.rstrip()
            inner_start += 2
        if chunk:
            items.append(("text", chunk, index))
        if text.startswith("/*", inner_start):
            close = text.find("*/", inner_start + 2)
            if close < 0:
                raise TemplateError("unclosed comment")
            end = text.find("}}", close + 2)
            if end < 0:
                raise TemplateError("unclosed action")
            trim_next = text[close + 2:end].strip() == "-"
            index = end + 2
            continue
        try:
            end = _action_end(text, inner_start)
        except TemplateError as error:
            raise _at(error, inner_start) from None
        inner = text[inner_start:end]
        trim_next = inner.endswith("-") and len(inner) >= 2 and inner[-2].isspace()
        if trim_next:
            inner = inner[:-1]
        items.append(("action", inner, inner_start))
        index = end + 2


def _action_end(text: str, start: int) -> int:
    """Where the action's `}}` is, skipping quoted strings; Go's error when there is none."""
    index = start
    while index < len(text):
        char = text[index]
        if text.startswith("}}", index):
            return index
        if char == "}":
            raise TemplateError("bad character U+007D '}'")
        if char in "\"`":
            close = index + 1
            while close < len(text) and text[close] != char:
                if char == '"' and text[close] == "\\":
                    close += 1
                if text[close] == "\n" and char == '"':
                    raise TemplateError("unterminated quoted string")
                close += 1
            if close >= len(text):
                raise TemplateError("unterminated quoted string" if char == '"' else "unterminated raw quoted string")
            index = close + 1
            continue
        if char == "\n":
            raise TemplateError("unclosed action")
        index += 1
    raise TemplateError("unclosed action")


class _Parser:
    def __init__(self, text: str, functions: dict[str, Callable]) -> None:
        self.items = _lex(text)
        self.end_pos = len(text)
        self.position = 0
        self.functions = functions
        self.templates: dict[str, list] = {}  # {{define}}/{{block}} bodies by name
        self.loops = 0  # how many {{range}} the parser is inside ({{break}}/{{continue}} need one)

    def parse(self) -> list:
        body, stop = self._list()
        if stop is not None:
            raise TemplateError(f"unexpected {{{{{stop}}}}}")
        return body

    def _name_and_pipeline(self, word: str, tokens: list[_Token], pos: int) -> tuple[str, _Pipeline | None]:
        if not tokens or tokens[0].kind not in ("string", "raw"):
            raise TemplateError(f"unexpected {tokens[0].text if tokens else 'end of action'} in {word} clause")
        name = _unquote(tokens[0].text) if tokens[0].kind == "string" else tokens[0].text[1:-1]
        pipeline = self._pipeline(tokens[1:], pos, "") if len(tokens) > 1 else None
        return name, pipeline

    def _named(self, word: str, tokens: list[_Token], pos: int, content: str, nested: bool) -> list:
        """{{define}}, {{block}}, {{template}}: what goes into the current list (nothing for define)."""
        if word == "template":
            name, pipeline = self._name_and_pipeline(word, tokens, pos)
            return [_Call(name, pipeline, "{{" + content.strip() + "}}", pos)]
        if word == "define" and (nested or len(tokens) != 1):
            raise TemplateError("unexpected {{define}}" if nested else "unexpected token in define clause")
        name, pipeline = self._name_and_pipeline(word, tokens, pos)
        loops, self.loops = self.loops, 0  # a named template is a body of its own
        body, stop = self._list(word)
        self.loops = loops
        if stop != "end":
            raise TemplateError(f"unexpected {{{{{stop}}}}} in {word}")
        self.templates[name] = body
        return [] if word == "define" else [_Call(name, pipeline, "{{" + content.strip() + "}}", pos)]

    def _list(self, inside: str | None = None) -> tuple[list, str | None]:
        """Nodes up to `end`/`else` (returned as the stop word) or the end of the text."""
        nodes: list = []
        while self.position < len(self.items):
            kind, content, pos = self.items[self.position]
            self.position += 1
            if kind == "text":
                nodes.append(_Text(content))
                continue
            try:
                stop = self._item(nodes, content, pos, inside)
            except TemplateError as error:
                raise _at(error, pos) from None
            if stop is not None:
                return nodes, stop
        if inside is not None:
            raise _at(TemplateError("unexpected EOF"), self.end_pos)
        return nodes, None

    def _item(self, nodes: list, content: str, pos: int, inside: str | None) -> str | None:
        """Parse one action into `nodes`; the stop word (end, else) if it is one."""
        tokens = _tokenize(content, pos)
        if not tokens:
            raise TemplateError("missing value for command")
        head = tokens[0]
        if head.kind == "ident" and head.text in ("if", "range", "with"):
            nodes.append(self._branch(head.text, tokens[1:], pos))
        elif head.kind == "ident" and head.text == "end":
            if inside is None:
                raise TemplateError("unexpected {{end}}")
            return "end"
        elif head.kind == "ident" and head.text == "else":
            if inside is None:
                raise TemplateError("unexpected {{else}}")
            self._else_tokens = tokens[1:]
            return "else"
        elif head.kind == "ident" and head.text in ("break", "continue"):
            if not self.loops:
                raise TemplateError(f"{{{{{head.text}}}}} outside {{{{range}}}}")
            if len(tokens) > 1:
                raise TemplateError(f"unexpected {tokens[1].text} in {{{{{head.text}}}}}")
            nodes.append(_LoopControl(head.text))
        elif head.kind == "ident" and head.text in ("define", "template", "block"):
            nodes.extend(self._named(head.text, tokens[1:], pos, content, nested=inside is not None))
        else:
            nodes.append(_Action(self._pipeline(tokens, pos, content)))
        return None

    def _branch(self, kind: str, tokens: list[_Token], pos: int) -> _Branch:
        if not tokens:
            raise TemplateError(f"missing value for {kind}")
        pipeline = self._pipeline(tokens, pos, "", allow_two=kind == "range")
        self.loops += kind == "range"
        try:
            body, stop = self._list(kind)
        finally:
            self.loops -= kind == "range"
        otherwise: list = []
        if stop == "else":
            rest = self._else_tokens
            if rest and rest[0].kind == "ident" and rest[0].text in ("if", "with") and kind in ("if", "with"):
                # `else if`: a nested branch that shares this one's {{end}}
                nested_kind = rest[0].text
                nested_pipeline = self._pipeline(rest[1:], pos, "")
                nested_body, nested_stop = self._list(nested_kind)
                nested_else: list = []
                if nested_stop == "else":
                    nested_else = self._else_chain(nested_kind, pos)
                otherwise = [_Branch(nested_kind, nested_pipeline, nested_body, nested_else)]
            elif rest:
                raise TemplateError(f"unexpected {rest[0].text!r} in else")
            else:
                otherwise, stop = self._list(kind)
                if stop == "else":
                    raise TemplateError("expected end; found {{else}}")
        return _Branch(kind, pipeline, body, otherwise)

    def _else_chain(self, kind: str, pos: int) -> list:
        rest = self._else_tokens
        if rest and rest[0].kind == "ident" and rest[0].text in ("if", "with"):
            nested_kind = rest[0].text
            pipeline = self._pipeline(rest[1:], pos, "")
            body, stop = self._list(nested_kind)
            otherwise = self._else_chain(nested_kind, pos) if stop == "else" else []
            return [_Branch(nested_kind, pipeline, body, otherwise)]
        otherwise, stop = self._list(kind)
        if stop == "else":
            raise TemplateError("expected end; found {{else}}")
        return otherwise

    def _pipeline(self, tokens: list[_Token], pos: int, text: str, allow_two: bool = False) -> _Pipeline:
        declarations: list[str] = []
        declare_at = next((i for i, t in enumerate(tokens) if t.kind == "declare"), None)
        if declare_at is not None:
            names = [t for t in tokens[:declare_at] if t.kind != "comma"]
            if not names or any(t.kind != "variable" for t in names) or len(names) > (2 if allow_two else 1):
                raise TemplateError("unexpected \":=\" in operand")
            declarations = [t.text for t in names]
            tokens = tokens[declare_at + 1:]
        commands: list[list[_Operand]] = []
        current: list[_Operand] = []
        index = 0
        while index < len(tokens):
            token = tokens[index]
            if token.kind == "pipe":
                if not current:
                    raise TemplateError("missing value for command")
                commands.append(current)
                current = []
                index += 1
                continue
            operand, index = self._operand(tokens, index)
            current.append(operand)
        if not current:
            raise TemplateError("missing value for command")
        commands.append(current)
        return _Pipeline(declarations, commands, pos, text)

    def _operand(self, tokens: list[_Token], index: int) -> tuple[_Operand, int]:
        token = tokens[index]
        index += 1
        kind = token.kind
        if kind == "dot":
            operand = _Operand("dot", text=".", pos=token.pos)
        elif kind == "field":
            operand = _Operand("field", chain=token.text.split(".")[1:], text=token.text, pos=token.pos)
        elif kind == "variable":
            operand = _Operand("variable", token.text, text=token.text, pos=token.pos)
        elif kind == "string":
            operand = _Operand("literal", _unquote(token.text), text=token.text, pos=token.pos)
        elif kind == "raw":
            operand = _Operand("literal", token.text[1:-1], text=token.text, pos=token.pos)
        elif kind == "number":
            operand = _Operand("literal", _number(token.text), text=token.text, pos=token.pos)
        elif kind == "ident":
            if token.text in ("true", "false"):
                operand = _Operand("literal", token.text == "true", text=token.text, pos=token.pos)
            elif token.text == "nil":
                operand = _Operand("literal", None, text="nil", pos=token.pos)
            elif token.text in self.functions:
                operand = _Operand("ident", token.text, text=token.text, pos=token.pos)
            else:
                raise TemplateError(f'function "{token.text}" not defined')
        elif kind == "lparen":
            depth, end = 1, index
            while end < len(tokens) and depth:
                depth += {"lparen": 1, "rparen": -1}.get(tokens[end].kind, 0)
                end += 1
            if depth:
                raise TemplateError("unclosed left paren")
            inner = tokens[index:end - 1]
            operand = _Operand("pipe", self._pipeline(inner, token.pos, ""), text="(...)", pos=token.pos)
            index = end
        elif kind == "rparen":
            raise TemplateError("unexpected right paren")
        else:
            raise TemplateError(f'unexpected "{token.text}" in operand')
        # A field chain right after a variable or a parenthesis applies to it.
        while index < len(tokens) and tokens[index].kind == "field" and tokens[index].pos == _end_of(tokens[index - 1]):
            if operand.kind in ("literal", "ident"):
                raise TemplateError(f'unexpected "{tokens[index].text}" in operand')
            operand.chain.extend(tokens[index].text.split(".")[1:])
            operand.text += tokens[index].text
            index += 1
        return operand, index


def _end_of(token: _Token) -> int:
    return token.pos + len(token.text)


def _unquote(text: str) -> str:
    try:
        return json.loads(text)
    except ValueError:
        return text[1:-1].encode("utf-8").decode("unicode_escape")


def _number(text: str) -> int | float:
    try:
        return int(text, 0)
    except ValueError:
        return float(text)


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

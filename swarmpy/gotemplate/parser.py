"""The parsing half of swarmpy.gotemplate (see its theory of operation): the errors, the lexer that splits
a template into text and `{{ actions }}`, the tree an action becomes, and the parser that builds it
with Go's error wording. No execution here (executor.py walks the tree)."""

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

"""The grammar of the composition language and its parser: source text -> `Composite`.

A source is line-oriented: optional declarations of the tool, then one composite whose body is
one step a line. ``#`` starts a comment; blank lines are ignored::

    TOOL name                              the tool this source implements
    DESCRIPTION "text"                     what it does (shown to the model)
    INPUT name: type, name: type           its arguments (types optional)
    OUTPUT name: type                      the properties of its result

    COMPOSITE name [INPUT a, b] [OUTPUT c] AS
        source -> tool[param=value, p2=var] -> target
        tool@^1.2[param=var.field] -> target
    [END]

A step calls ``tool`` (a ToolVersion's name; ``CamelCase`` and ``snake_case`` are read as
``kebab-case``, so the seed's ``SentimentAnalysis`` is the tool ``sentiment-analysis``),
optionally at a semver range (``@^1.0``, ``@~1.2.3``, ``@1.x``, ``@">=1.0 <2"``; default: any
version), with arguments whose values are literals (JSON strings, numbers, ``true``, ``false``,
``null``, ``[lists]``, ``{objects}``) or references to variables (``var`` or ``var.field.sub``).
The value piped in from the left (``source ->``), when given, goes to the tool's parameter the
checker picks (see `hive.runtime.tooling.compose.check`); a step without one writes its call
with brackets or a range (``tool[] -> target``), which tells the call from a source. The result
is bound to ``target``.
Inside ``[...]`` and ``{...}`` a step may continue on the next lines. Steps are a dataflow
graph: their order in the text does not matter, each variable is bound once, and independent
steps run at the same time.

Types: string (text, file), integer (int), number (float), boolean (bool), object (map),
array (list), list[T], any; case-insensitive. Parsed with lark's LALR parser (fed by one
regular expression made of the grammar's terminals); every error names the line and column.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.common import LexerConf
from lark.exceptions import UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.lexer import Lexer

from hive.errors import InvalidInput

GRAMMAR = r"""
start: _NL? declaration* composite

?declaration: "TOOL" IDENT _NL             -> tool_decl
            | "DESCRIPTION" STRING _NL     -> description_decl
            | "INPUT" ports _NL            -> input_decl
            | "OUTPUT" ports _NL           -> output_decl

composite: "COMPOSITE" IDENT composite_inputs composite_outputs "AS" _NL step+ end?
composite_inputs: ("INPUT" ports)?
composite_outputs: ("OUTPUT" ports)?
end: "END" _NL

ports: port ("," port)*
port: IDENT (":" type)?
type: IDENT ("[" type "]")?

step: reference "->" call "->" IDENT _NL   -> piped_step
    | bare_call "->" IDENT _NL             -> bare_step
call: IDENT RANGE? arguments?
bare_call: IDENT RANGE arguments?
         | IDENT arguments
arguments: "[" [argument ("," argument)*] "]"
argument: IDENT "=" value

?value: STRING            -> string
      | NUMBER            -> number
      | "true"            -> true
      | "false"           -> false
      | "null"            -> null
      | reference
      | "[" [value ("," value)*] "]"      -> list
      | "{" [pair ("," pair)*] "}"        -> object
pair: (STRING | IDENT) ":" value
reference: IDENT | DOTTED

IDENT: /[A-Za-z_][A-Za-z0-9_]*(-[A-Za-z0-9_]+)*/
DOTTED: /[A-Za-z_][A-Za-z0-9_]*(-[A-Za-z0-9_]+)*(\.[A-Za-z_][A-Za-z0-9_]*(-[A-Za-z0-9_]+)*)+/
RANGE: /@("[^"\n]*"|([\^~=]|[<>]=?)?([0-9A-Za-z.+*]|-(?!>))+)/
STRING: /"([^"\\\n]|\\.)*"/
NUMBER: /-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/
_NL: /([ \t]*(#[^\n]*)?\r?\n)+/
COMMENT: /#[^\n]*/
BLANK: /[ \t\f]+/
%ignore BLANK
%ignore COMMENT
"""

# What lark's terminal names mean to a person reading an error.
_TERMINAL_WORDS = {
    "IDENT": "a name",
    "DOTTED": "a name.field",
    "RANGE": "@version-range",
    "STRING": 'a "string"',
    "NUMBER": "a number",
    "_NL": "end of line",
    "$END": "end of source",
}

_TYPE_NAMES = {
    "string": ("string", "text", "str", "file"),
    "integer": ("integer", "int"),
    "number": ("number", "float"),
    "boolean": ("boolean", "bool"),
    "object": ("object", "map", "dict"),
    "array": ("array", "list"),
    "null": ("null",),
}
_TYPES: dict[str, dict[str, Any]] = {
    alias: {"type": json_type} for json_type, aliases in _TYPE_NAMES.items() for alias in aliases
} | {"any": {}}


@dataclass(frozen=True)
class Place:
    """Where something is in the source (1-based)."""

    line: int
    column: int

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}"


class CompositionError(InvalidInput):
    """A source that does not parse or does not check; names the line (and column)."""

    def __init__(self, place: Place, problem: str, where: str = "composite") -> None:
        super().__init__(where, f"{place}: {problem}")
        self.place = place
        self.line = place.line
        self.column = place.column
        self.where = where
        self.bare = problem

    def located(self, where: str) -> CompositionError:
        """The same error, naming the file or field the source came from."""
        return CompositionError(self.place, self.bare, where)


@dataclass(frozen=True)
class Ref:
    """A reference to a variable, or to a field of its value: ``var`` or ``var.field.sub``."""

    variable: str
    fields: tuple[str, ...]
    place: Place

    def __str__(self) -> str:
        return ".".join((self.variable, *self.fields))


@dataclass(frozen=True)
class Port:
    """An input or output of the composite: a name and, when declared, its JSON Schema."""

    name: str
    schema: dict[str, Any] | None
    place: Place


@dataclass(frozen=True)
class Step:
    """One line of the body: ``source -> tool@range[arguments] -> target``.

    `arguments` maps parameter names to values: JSON literals, `Ref`s, and lists and dicts of
    those. `tool` is the ToolVersion name (kebab-case); `written` is how the line spells it.
    """

    tool: str
    written: str
    version_range: str | None
    arguments: dict[str, Any]
    source: Ref | None
    target: str
    place: Place
    target_place: Place

    def describe(self) -> str:
        at = f"@{self.version_range}" if self.version_range else ""
        return f"{self.tool}{at} -> {self.target}"


@dataclass(frozen=True)
class Composite:
    """A parsed source: the composite tool, its ports and its steps (in source order)."""

    name: str
    place: Place
    description: str
    inputs: tuple[Port, ...]
    outputs: tuple[Port, ...]
    steps: tuple[Step, ...]
    declared_tool: str | None = field(default=None)  # the TOOL line, when there is one


def tool_name(written: str) -> str:
    """The ToolVersion name a step means: ``SentimentAnalysis`` and ``sentiment_analysis`` are
    both ``sentiment-analysis``."""
    kebab = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "-", written)
    return kebab.replace("_", "-").lower()


def _place(token: Token) -> Place:
    return Place(token.line or 0, token.column or 0)


@dataclass
class _Call:
    tool: Token
    version_range: str | None
    arguments: dict[str, Any]


@dataclass
class _Declaration:
    kind: str
    value: Any
    place: Place


@v_args(inline=True)
class _Build(Transformer[Token, Any]):
    """Builds the `Composite` while the LALR parser reduces (no parse tree is kept)."""

    def __init__(self, where: str) -> None:
        super().__init__()
        self.where = where

    def _fail(self, place: Place, problem: str) -> CompositionError:
        return CompositionError(place, problem, self.where)

    # values
    def string(self, token: Token) -> str:
        return str(json.loads(token))

    def number(self, token: Token) -> int | float:
        text = str(token)
        return float(text) if any(c in text for c in ".eE") else int(text)

    def true(self) -> bool:
        return True

    def false(self) -> bool:
        return False

    def null(self) -> None:
        return None

    def list(self, *items: Any) -> list[Any]:
        return [] if items == (None,) else list(items)

    def pair(self, key: Token, value: Any) -> tuple[str, Any]:
        return (str(json.loads(key)) if key.type == "STRING" else str(key)), value

    def object(self, *pairs: tuple[str, Any] | None) -> dict[str, Any]:
        return dict(p for p in pairs if p is not None)

    def reference(self, name: Token) -> Ref:
        variable, *fields = str(name).split(".")
        return Ref(variable, tuple(fields), _place(name))

    # steps
    def argument(self, name: Token, value: Any) -> tuple[Token, Any]:
        return name, value

    def arguments(self, *pairs: tuple[Token, Any] | None) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for pair in pairs:
            if pair is None:
                continue
            name, value = pair
            if str(name) in found:
                raise self._fail(_place(name), f"argument {name} is given twice")
            found[str(name)] = value
        return found

    def _call(self, tool: Token, *rest: Any) -> _Call:
        version_range: str | None = None
        arguments: dict[str, Any] = {}
        for part in rest:
            if isinstance(part, Token) and part.type == "RANGE":
                text = str(part)[1:]
                version_range = text[1:-1] if text.startswith('"') else text
            elif isinstance(part, dict):
                arguments = part
        return _Call(tool, version_range, arguments)

    call = _call
    bare_call = _call

    def _step(self, source: Ref | None, call: _Call, target: Token) -> Step:
        return Step(
            tool=tool_name(str(call.tool)),
            written=str(call.tool),
            version_range=call.version_range,
            arguments=call.arguments,
            source=source,
            target=str(target),
            place=source.place if source else _place(call.tool),
            target_place=_place(target),
        )

    def piped_step(self, source: Ref, call: _Call, target: Token) -> Step:
        return self._step(source, call, target)

    def bare_step(self, call: _Call, target: Token) -> Step:
        return self._step(None, call, target)

    # ports and types
    def type(self, name: Token, inner: dict[str, Any] | None = None) -> dict[str, Any]:
        key = str(name).lower()
        if inner is not None:
            if key not in ("list", "array"):
                raise self._fail(_place(name), f"type {name}[...]: only list[T] takes a type")
            return {"type": "array", "items": inner}
        if key not in _TYPES:
            known = ", ".join(sorted(_TYPES))
            raise self._fail(_place(name), f"unknown type {name} (known: {known}, list[T])")
        return dict(_TYPES[key])

    def port(self, name: Token, schema: dict[str, Any] | None = None) -> Port:
        return Port(str(name), schema, _place(name))

    def ports(self, *ports: Port) -> tuple[Port, ...]:
        seen: set[str] = set()
        for port in ports:
            if port.name in seen:
                raise self._fail(port.place, f"{port.name} is declared twice")
            seen.add(port.name)
        return ports

    # declarations
    def tool_decl(self, name: Token) -> _Declaration:
        return _Declaration("TOOL", tool_name(str(name)), _place(name))

    def description_decl(self, text: Token) -> _Declaration:
        return _Declaration("DESCRIPTION", json.loads(text), _place(text))

    def input_decl(self, ports: tuple[Port, ...]) -> _Declaration:
        return _Declaration("INPUT", ports, ports[0].place)

    def output_decl(self, ports: tuple[Port, ...]) -> _Declaration:
        return _Declaration("OUTPUT", ports, ports[0].place)

    def composite_inputs(self, ports: tuple[Port, ...] | None = None) -> tuple[Port, ...] | None:
        return ports

    composite_outputs = composite_inputs

    def end(self) -> None:
        return None

    def composite(self, name: Token, inputs: Any, outputs: Any, *steps: Step | None) -> Any:
        return name, inputs, outputs, tuple(s for s in steps if s is not None)

    def start(self, *parts: Any) -> Composite:
        *declarations, (name, inputs, outputs, steps) = parts
        declared: dict[str, _Declaration] = {}
        for declaration in declarations:
            if declaration.kind in declared:
                first = declared[declaration.kind].place.line
                raise self._fail(
                    declaration.place,
                    f"{declaration.kind} is declared twice (first on line {first})",
                )
            declared[declaration.kind] = declaration
        place = _place(name)
        composite_name = tool_name(str(name))
        tool = declared.get("TOOL")
        if tool and tool.value != composite_name:
            raise self._fail(
                place,
                f"COMPOSITE {composite_name} is not the TOOL {tool.value} "
                f"of line {tool.place.line}",
            )
        description = declared.get("DESCRIPTION")
        return Composite(
            name=composite_name,
            place=place,
            description=str(description.value) if description else "",
            inputs=self._merge("INPUT", declared.get("INPUT"), inputs, place),
            outputs=self._merge("OUTPUT", declared.get("OUTPUT"), outputs, place),
            steps=steps,
            declared_tool=tool.value if tool else None,
        )

    def _merge(
        self,
        keyword: str,
        declaration: _Declaration | None,
        on_composite: tuple[Port, ...] | None,
        place: Place,
    ) -> tuple[Port, ...]:
        """The ports a TOOL's INPUT/OUTPUT line and the COMPOSITE line declare: the same names;
        a type given by either (by both: the same)."""
        if declaration is None:
            return on_composite or ()
        declared: tuple[Port, ...] = declaration.value
        if on_composite is None:
            return declared
        names = [p.name for p in declared]
        if sorted(names) != sorted(p.name for p in on_composite):
            listed = ", ".join(p.name for p in on_composite)
            raise self._fail(
                place,
                f"COMPOSITE {keyword} {listed} differs from the {keyword} line "
                f"{declaration.place.line} ({', '.join(names)})",
            )
        by_name = {p.name: p for p in on_composite}
        merged = []
        for port in declared:
            other = by_name[port.name]
            if port.schema and other.schema and port.schema != other.schema:
                raise self._fail(
                    other.place, f"{port.name} has another type on line {port.place.line}"
                )
            merged.append(Port(port.name, port.schema or other.schema, port.place))
        return tuple(merged)


class _Lexer(Lexer):
    """The grammar's terminals as one regular expression (blanks before a token included): a
    match a token, several times faster than lark's own lexers on long sources. Keywords are the
    names that spell one; every terminal's pattern comes from GRAMMAR, so the two cannot drift.
    Line breaks inside brackets are blanks, so a step's arguments may span lines."""

    # longest first among the same start; names before keywords are looked up
    _ORDER = ("_NL", "DOTTED", "IDENT", "RANGE", "STRING", "NUMBER", "COMMENT")

    def __init__(self, conf: LexerConf) -> None:
        literals = {t.pattern.value: t.name for t in conf.terminals if t.pattern.type == "str"}
        ident = re.compile(conf.terminals_by_name["IDENT"].pattern.to_regexp())
        self.keywords = {text: name for text, name in literals.items() if ident.fullmatch(text)}
        symbols = sorted((t for t in literals if t not in self.keywords), key=len, reverse=True)
        groups = [f"(?P<{literals[t]}>{re.escape(t)})" for t in symbols]
        groups += [
            f"(?P<{name}>{conf.terminals_by_name[name].pattern.to_regexp()})"
            for name in self._ORDER
        ]
        blank = conf.terminals_by_name["BLANK"].pattern.to_regexp()
        self.master = re.compile(f"(?:{blank})?(?:{'|'.join(groups)})")
        self.opening = {literals["["], literals["{"]}
        self.closing = {literals["]"], literals["}"]}
        self.blank = re.compile(blank)
        self.ignored = set(conf.ignore)

    def lex(self, text: str) -> Iterator[Token]:  # type: ignore[override]
        match = self.master.match
        keywords = self.keywords
        ignored = self.ignored
        line, line_start, at, end = 1, 0, 0, len(text)
        depth = 0  # inside brackets, a line break is a blank: long arguments may span lines
        while at < end:
            found = match(text, at)
            if found is None:
                skipped = self.blank.match(text, at)
                at = skipped.end() if skipped else at
                if at >= end:
                    return
                column = at - line_start + 1
                raise CompositionError(Place(line, column), f"unexpected character {text[at]!r}")
            kind = found.lastgroup
            assert kind is not None
            value = found.group(kind)
            start = found.start(kind)
            if kind == "IDENT":
                kind = keywords.get(value, kind)
            if kind in self.opening:
                depth += 1
            elif kind in self.closing:
                depth = max(0, depth - 1)
            if kind not in ignored and not (depth and kind == "_NL"):
                yield Token(kind, value, start, line, start - line_start + 1)
            if kind == "_NL":
                line += value.count("\n")
                line_start = start + value.rindex("\n") + 1
            at = found.end()


_PARSER: list[Lark] = []


def _parser() -> Lark:
    """The one parser; the transformer runs inside the LALR parser, so no tree is kept."""
    if not _PARSER:
        _PARSER.append(Lark(GRAMMAR, parser="lalr", lexer=_Lexer, transformer=_Build("composite")))
    return _PARSER[0]


def _expected(names: set[str] | frozenset[str], parser: Lark) -> str:
    patterns = {t.name: t.pattern for t in parser.terminals}
    words = []
    for name in sorted(names):
        if name in _TERMINAL_WORDS:
            words.append(_TERMINAL_WORDS[name])
        elif name in patterns and patterns[name].type == "str":
            words.append(repr(patterns[name].value))
        else:
            words.append(name.lower())
    return ", ".join(sorted(set(words)))


def _syntax_error(
    error: UnexpectedInput, source: str, parser: Lark, where: str
) -> CompositionError:
    line = getattr(error, "line", None) or 0
    column = getattr(error, "column", None) or 0
    if isinstance(error, UnexpectedToken):
        token = error.token
        if token.type == "$END":
            seen = "end of source"
            line = max(1, source.rstrip("\n").count("\n") + 1)
            column = len(source.rstrip("\n").rsplit("\n", 1)[-1]) + 1
        elif token.type == "_NL":
            seen = "end of line"
        else:
            seen = repr(str(token))
        expected = _expected(error.accepts or error.expected, parser)
        return CompositionError(
            Place(line, column), f"unexpected {seen}; expected {expected}", where
        )
    if isinstance(error, UnexpectedEOF):
        lines = source.rstrip("\n").split("\n")
        return CompositionError(
            Place(len(lines), len(lines[-1]) + 1),
            f"the source ends too soon; expected {_expected(set(error.expected), parser)}",
            where,
        )
    return CompositionError(Place(line, column), str(error).splitlines()[0], where)


def parse(source: str, where: str = "composite") -> Composite:
    """The composite `source` declares; `CompositionError` (naming `where`, the line and the
    column) when it does not follow the grammar."""
    text = source if source.endswith("\n") else source + "\n"
    parser = _parser()
    try:
        tree = parser.parse(text)
    except CompositionError as error:
        raise error.located(where) from None
    except UnexpectedInput as error:
        raise _syntax_error(error, text, parser, where) from None
    assert isinstance(tree, Composite)
    return tree

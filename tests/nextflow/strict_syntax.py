"""Static check for the constructs Nextflow's strict parser (the default from Nextflow 26.04) rejects or
deprecates, for the ones that can be seen by reading the text (no Nextflow engine needed).

The rules follow the Nextflow docs, "Preparing for strict syntax" (docs.seqera.io/nextflow/strict-syntax):

removed in scripts   import and class declarations; statements mixed with top-level declarations (e.g. a
                     top-level ``workflow.onComplete { }``); ``for``/``while`` loops; ``switch``; the spread
                     operator; assignments and ``++``/``--`` inside expressions; implicit environment
                     variables in strings;
restricted           ``addParams``/``params`` clauses of includes; ``final``/typed variable declarations
                     (Groovy style); slashy strings with interpolation or over several lines; dollar-slashy
                     strings; soft casts ``(Type) x``; unquoted ``env`` inputs/outputs; a process
                     ``script:`` label left out;
deprecated           ``Channel.`` (use ``channel.``); the implicit closure parameter ``it``; the process
                     ``shell:`` section;
config files         only assignments, blocks and ``includeConfig`` outside closures: no variables
                     (``def``), functions, ``if``, ``try`` or other statements.

Two rules are a little stricter than the parser, as house style: ``it`` must not be used even when declared
(``it ->``), and the spread-dot operator ``list*.name`` is refused with the spread operator.

:func:`violations` returns ``(line, message)`` for one file; comments and string contents are blanked first,
so words inside strings (process scripts) never count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_SLASHY_BEFORE = set("=(,[{:?!&|~;+") | {""}


@dataclass
class StringLit:
    kind: str  # sq, dq, tsq, tdq, slashy, dollar_slashy
    content: str
    start: int


def scan(text: str) -> tuple[str, list[StringLit]]:
    """(code, strings): ``code`` is ``text`` with comments and string contents replaced by spaces (newlines
    and offsets kept, quotes kept), ``strings`` the string literals found."""
    out = list(text)
    strings: list[StringLit] = []
    i, n = 0, len(text)
    if text.startswith("#!"):  # the shebang line
        i = text.find("\n") if "\n" in text else n
        out[:i] = " " * i

    def blank(a: int, b: int) -> None:
        for k in range(a, b):
            if out[k] != "\n":
                out[k] = " "

    def prev_significant(pos: int) -> str:
        k = pos - 1
        while k >= 0 and out[k] in " \t\r\n":
            k -= 1
        return out[k] if k >= 0 else ""

    def skip_interpolation(j: int) -> int:
        """j just after '${'; returns the index after the matching '}'."""
        depth = 1
        while j < n and depth:
            ch = text[j]
            if ch in "'\"":
                j = read_string(j, record=False)[1]
                continue
            depth += {"{": 1, "}": -1}.get(ch, 0)
            j += 1
        return j

    def read_string(j: int, record: bool = True) -> tuple[str, int]:
        """A quoted string starting at j; returns (kind, end index)."""
        quote = text[j]
        triple = text.startswith(quote * 3, j)
        kind = ("t" if triple else "") + ("sq" if quote == "'" else "dq")
        k = j + (3 if triple else 1)
        body_start = k
        while k < n:
            ch = text[k]
            if ch == "\\":
                k += 2
                continue
            if quote == '"' and text.startswith("${", k):
                k = skip_interpolation(k + 2)
                continue
            if triple and text.startswith(quote * 3, k):
                end_body, k = k, k + 3
                break
            if not triple and ch == quote:
                end_body, k = k, k + 1
                break
            if not triple and ch == "\n":  # unterminated; stop at the line end
                end_body = k
                break
            k += 1
        else:
            end_body = n
        if record:
            strings.append(StringLit(kind, text[body_start:end_body], j))
            blank(body_start, end_body)
        return kind, k

    while i < n:
        ch = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            blank(i, j)
            i = j
        elif text.startswith("$/", i):
            j = text.find("/$", i + 2)
            j = n if j < 0 else j
            strings.append(StringLit("dollar_slashy", text[i + 2:j], i))
            blank(i + 2, j)
            i = min(n, j + 2)
        elif ch in "'\"":
            i = read_string(i)[1]
        elif ch == "/" and prev_significant(i) in _SLASHY_BEFORE:
            j = i + 1
            while j < n and text[j] != "/":
                j += 2 if text[j] == "\\" else 1
            strings.append(StringLit("slashy", text[i + 1:j], i))
            blank(i + 1, j)
            i = j + 1
        else:
            i += 1
    return "".join(out), strings


def _line(code: str, pos: int) -> int:
    return code.count("\n", 0, pos) + 1


# Anywhere in code (scripts and configs).
_CODE_RULES: list[tuple[str, str]] = [
    (r"(?m)^\s*import\s+[\w.]+", "import declaration: use the fully qualified class name"),
    (r"\bclass\s+[A-Z]\w*", "class declaration: use functions, or lib/"),
    (r"\b(?:for|while)\s*\(|\bdo\s*\{", "for/while loop: use each/collect/findAll/inject"),
    (r"\bswitch\s*\(", "switch statement: use if/else if"),
    (r"(?<=[\[(,])\s*\*\s*[A-Za-z_(\[]", "spread operator: list the elements explicitly"),
    (r"\w\s*\*\.\s*\w", "spread-dot operator: use collect { }"),
    (r"\+\+|--", "increment/decrement: use += 1 / -= 1 as a statement"),
    (r"(?<=[(,])\s*[A-Za-z_]\w*\s*[-+*/]?=(?![=~])", "assignment inside an expression: assign in a statement"),
    (r"\bfinal\s+\w+", "`final` declaration: use def"),
    (r"\bdef\s+[A-Z]\w*(?:<[^>]*>)?\s+[a-z_]\w*\s*=", "Groovy-typed variable: use def name (or def name: Type)"),
    (r"(?m)^\s*(?:String|Integer|int|long|Long|boolean|Boolean|double|Double|float|Float|Map|List|Set|Path|File|Object)"
     r"(?:<[^>]*>)?\s+[a-z_]\w*\s*=", "Groovy-typed variable: use def name (or def name: Type)"),
    (r"\(\s*(?:String|Integer|Map|List|Set|Path|File|Object|Boolean|Double|Long|int|long|boolean|double)"
     r"(?:<[^>()]*>)?\s*\)\s*[\w(\[]", "soft cast (Type) x: use `as Type` or a conversion method"),
    (r"\bChannel\s*\.", "`Channel.` is deprecated: use the `channel` namespace"),
    (r"(?<![.\w])it\b(?!\s*:)", "implicit closure parameter `it`: name the parameter"),
]

# Scripts only.
_SCRIPT_RULES: list[tuple[str, str]] = [
    (r"(?m)^\s*shell\s*:", "process shell: section is deprecated: use script:"),
    (r"\benv\s+[A-Za-z_]", "env input/output name must be quoted: env 'NAME'"),
    (r"\}\s*from\s*(['\"])\s*\1\s*(?:addParams|params)\s*\(", "include with addParams/params: pass inputs explicitly"),
]

_TOP_LEVEL_SCRIPT = re.compile(
    r"include\b|params\b|workflow\s*(?:\{|[A-Za-z_])|process\s+\w|def\s+\w+\s*\(|enum\s+\w|record\s+\w|output\s*\{"
    r"|nextflow\.(?:enable|preview)\.\w|#!")
_CONFIG_STATEMENT = re.compile(
    r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*\s*(?:=(?!=)|\{)"  # assignment or block
    r"|(['\"])[^'\"\n]*\1\s*=(?!=)"  # quoted key assignment
    r"|with(?:Label|Name)\s*:\s*(?:(['\"])[^'\"\n]*\2|[\w.*|!]+)\s*\{"  # process selector
    r"|includeConfig\b|id\s+['\"]")
_CONTINUES_AFTER = set("=,+-*/?:&|(.[!<>~")
_CONTINUES_BEFORE = (".", "?.", "?", ":", "&&", "||", "+", "*", "/", "==", "!=")


def _statement_starts(code: str, config: bool) -> list[int]:
    """Offsets where a statement at declaration level starts: top level for scripts; top level and inside
    config blocks (not closures, lists or calls) for configs."""
    starts: list[int] = []
    stack: list[str] = []  # 'block' (config block) or 'code' (closure, body, (), [])
    expect = True  # a new statement may start at the next significant character
    last = ""  # last significant character
    i, n = 0, len(code)
    while i < n:
        ch = code[i]
        if ch in " \t\r":
            i += 1
            continue
        at_level = all(kind == "block" for kind in stack)
        if ch == "\n" or ch == ";":
            if at_level and last not in _CONTINUES_AFTER:
                expect = True
            i += 1
            continue
        if expect and at_level and ch != "}" and not code.startswith(_CONTINUES_BEFORE, i):
            starts.append(i)
        expect = False
        if ch in "([":
            stack.append("code")
        elif ch in ")]":
            if stack:
                stack.pop()
        elif ch == "{":
            before = code[:i].rstrip()
            is_block = config and at_level and bool(before) and (
                before[-1] not in "=(,[:?>!&|+" or re.search(r"with(?:Label|Name)\s*:\s*\S+$", before) is not None)
            stack.append("block" if is_block else "code")
            expect = is_block
        elif ch == "}":
            kind = stack.pop() if stack else "code"
            expect = kind == "block"
        last = ch
        i += 1
    return starts


def violations(path: Path | str, text: str | None = None) -> list[tuple[int, str]]:
    """Strict-parser violations of one .nf or .config file, as (line, message)."""
    path = Path(path)
    text = path.read_text() if text is None else text
    config = path.suffix == ".config"
    code, strings = scan(text)
    found: list[tuple[int, str]] = []
    for pattern, message in _CODE_RULES + ([] if config else _SCRIPT_RULES):
        for m in re.finditer(pattern, code):
            found.append((_line(code, m.start()), message))
    for s in strings:
        if s.kind == "dollar_slashy":
            found.append((_line(code, s.start), "dollar-slashy string: use a (multi-line) string"))
        elif s.kind == "slashy":
            if "\n" in s.content:
                found.append((_line(code, s.start), "slashy string over several lines: use a multi-line string"))
            if re.search(r"\$[{A-Za-z_]", s.content):
                found.append((_line(code, s.start), "slashy string with interpolation: use a double-quoted string"))
        elif s.kind in ("dq", "tdq"):
            for m in re.finditer(r"(?<!\\)\$\{?([A-Z_][A-Z0-9_]*)\b(?!\s*\()", s.content):
                if m.group(1) not in ("_",):
                    found.append((_line(code, s.start) + s.content.count("\n", 0, m.start()),
                                  f"implicit environment variable ${m.group(1)}: use env('{m.group(1)}') or \\$"))
    for start in _statement_starts(code, config):
        rest = code[start:]
        if config:
            if not _CONFIG_STATEMENT.match(rest):
                word = rest.split(None, 1)[0] if rest.split() else rest
                found.append((_line(code, start), f"config statement `{word}`: configs allow only assignments, "
                                                  "blocks and includeConfig outside closures"))
        elif not _TOP_LEVEL_SCRIPT.match(rest):
            word = rest.split(None, 1)[0] if rest.split() else rest
            found.append((_line(code, start), f"top-level statement `{word}` beside declarations: move it into a "
                                              "workflow (handlers: the onComplete:/onError: sections)"))
    if not config:
        for m in re.finditer(r"\bprocess\s+\w+\s*\{", code):
            body = _braced(code, m.end() - 1)
            if re.search(r"(?m)^\s*(?:input|output|when|stub)\s*:", body) and not re.search(
                    r"(?m)^\s*(?:script|exec)\s*:", body):
                found.append((_line(code, m.start()), "process with sections but no script: label"))
    return sorted(set(found))


def _braced(code: str, open_at: int) -> str:
    depth, i = 0, open_at
    while i < len(code):
        depth += {"{": 1, "}": -1}.get(code[i], 0)
        if depth == 0:
            return code[open_at + 1:i]
        i += 1
    return code[open_at + 1:]

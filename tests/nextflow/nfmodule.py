"""Read a Nextflow DSL2 module (modules/local/<step>/main.nf) and run its `script:` block without Nextflow.

Nextflow is not available where the tests run, so this does the part of a task's life that matters for
checking a module against the real tools: it parses the process' `input:`/`output:` declarations and its
`script:` section, evaluates the few Groovy statements before the script string (``def args =
task.ext.args ?: ''`` and ternaries of that shape), interpolates the GString with ``meta``, the input
names and ``task`` (``ext.args``, ``cpus``, ``process``), strips the common indentation as Nextflow
does, stages the inputs into a task folder by name (honouring ``stageAs``), runs the script with
``bash -euo pipefail`` (the pipeline's ``process.shell``) and reports which declared outputs exist.
``eval(...)`` outputs (the tool versions) are evaluated after a script that succeeded, as Nextflow appends
them to the task script (the stub's too): each command runs through ``bash -c "..."`` in the task folder
and environment, its standard output is the value, and a command that fails fails the task. The values of
``val``/``eval`` tuples are reported per ``emit:`` and per ``topic:``.

Only the Groovy that our modules use is understood; anything else raises ``GroovySubsetError`` so a
module that grows real logic fails the test instead of being mis-rendered. Keeping module Groovy this
small is a rule of the house (logic lives in the ``egr`` package).
"""

from __future__ import annotations

import glob
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any


class GroovySubsetError(ValueError):
    """The module uses Groovy this renderer does not understand."""


# ----------------------------------------------------------------------------------------------
# Parsing the process definition


@dataclass
class Declaration:
    """One `input:` or `output:` line: its qualifiers (`val`/`path`), names/patterns and options."""

    items: list[tuple[str, str, dict[str, Any]]]  # (qualifier, name or pattern source, options)
    options: dict[str, Any] = field(default_factory=dict)  # emit:, optional:
    text: str = ""


@dataclass
class Module:
    path: Path
    name: str
    inputs: list[Declaration]
    outputs: list[Declaration]
    script_defs: list[str]  # Groovy statements before the script string
    script: str  # the GString source, without the triple quotes
    stub: str
    directives: dict[str, list[str]]


_SECTION = re.compile(r"^\s*(input|output|when|script|stub|exec|shell):\s*$")


def _strip_comment(line: str) -> str:
    # Only whole-line and trailing `//` comments outside quotes occur in declarations.
    out, quote = [], None
    i = 0
    while i < len(line):
        ch = line[i]
        if quote:
            if ch == "\\":
                out.append(line[i : i + 2])
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif line.startswith("//", i):
            break
        out.append(ch)
        i += 1
    return "".join(out).rstrip()


def _split_top(text: str, sep: str = ",") -> list[str]:
    """Split on `sep` outside quotes, brackets and parentheses."""
    parts, depth, quote, buf = [], 0, None, []
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            buf.append(ch)
            if ch == "\\" and i + 1 < len(text):
                buf.append(text[i + 1])
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
            buf.append(ch)
        elif ch in "([{":
            depth += 1
            buf.append(ch)
        elif ch in ")]}":
            depth -= 1
            buf.append(ch)
        elif ch == sep and depth == 0:
            parts.append("".join(buf).strip())
            buf = []
        else:
            buf.append(ch)
        i += 1
    if "".join(buf).strip():
        parts.append("".join(buf).strip())
    return parts


def _literal(text: str) -> Any:
    text = text.strip()
    if text in ("true", "false"):
        return text == "true"
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    raise GroovySubsetError(f"not a literal: {text!r}")


def _parse_item(text: str) -> tuple[str, str, dict[str, Any]]:
    """`val(meta)`, `path(x, stageAs: 'a/*')`, `path "out.txt"`, `path("${meta.id}/...")`, `eval('tool --version')`."""
    m = re.fullmatch(r"(val|path|env|stdout|eval)\s*(?:\((.*)\)|\s+(.*))?", text.strip(), re.S)
    if not m:
        raise GroovySubsetError(f"unknown declaration item: {text!r}")
    qualifier, inner = m.group(1), (m.group(2) if m.group(2) is not None else m.group(3) or "")
    args = _split_top(inner)
    name = args[0] if args else ""
    opts = {}
    for arg in args[1:]:
        key, _, value = arg.partition(":")
        opts[key.strip()] = _literal(value)
    return qualifier, name, opts


def _parse_declaration(line: str) -> Declaration:
    line = line.strip()
    if line.startswith("tuple"):
        body = line[len("tuple") :].strip()
    else:
        body = line
    parts = _split_top(body)
    items, options = [], {}
    for part in parts:
        if re.match(r"^(emit|optional|topic)\s*:", part):
            key, _, value = part.partition(":")
            options[key.strip()] = value.strip() if key.strip() != "optional" else _literal(value)
        elif re.match(r"^[A-Za-z]+\s*:", part) and items and not line.startswith("tuple"):
            # `path x, stageAs: 'dir/*'`: an option of the single item, written outside parentheses.
            key, _, value = part.partition(":")
            items[-1][2][key.strip()] = _literal(value)
        else:
            items.append(_parse_item(part))
    return Declaration(items, options, line)


def _triple_quoted(lines: list[str], start: int) -> tuple[str, int]:
    """The content of the `\"\"\"...\"\"\"` string starting at or after lines[start]; returns (source, next index)."""
    i = start
    while i < len(lines) and '"""' not in lines[i]:
        i += 1
    if i == len(lines):
        raise GroovySubsetError("no triple-quoted script string")
    first = lines[i]
    after = first[first.index('"""') + 3 :]
    body = []
    if '"""' in after:
        return after[: after.index('"""')], i + 1
    body.append(after)
    i += 1
    while i < len(lines) and '"""' not in lines[i]:
        body.append(lines[i])
        i += 1
    last = lines[i]
    body.append(last[: last.index('"""')])
    # The text after the opening quotes (usually empty) forms the first line.
    return "\n".join(body), i + 1


def parse_module(path: Path) -> Module:
    text = Path(path).read_text()
    m = re.search(r"^process\s+([A-Z0-9_]+)\s*\{", text, re.M)
    if not m:
        raise GroovySubsetError(f"{path}: no process definition")
    name = m.group(1)
    lines = text[m.end() :].splitlines()
    sections: dict[str, list[str]] = {"directives": []}
    current = "directives"
    script_defs: list[str] = []
    script = stub = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        sm = _SECTION.match(line)
        if sm:
            current = sm.group(1)
            i += 1
            if current in ("script", "stub"):
                defs = []
                while i < len(lines) and '"""' not in lines[i]:
                    stmt = _strip_comment(lines[i]).strip()
                    if stmt:
                        defs.append(stmt)
                    i += 1
                source, i = _triple_quoted(lines, i)
                if current == "script":
                    script_defs, script = defs, source
                else:
                    stub = source
                current = "after"
            continue
        sections.setdefault(current, []).append(line)
        i += 1

    def declarations(section: str) -> list[Declaration]:
        out = []
        for raw in sections.get(section, []):
            line = _strip_comment(raw).strip()
            if line:
                out.append(_parse_declaration(line))
        return out

    directives: dict[str, list[str]] = {}
    for raw in sections["directives"]:
        line = _strip_comment(raw).strip()
        if line and line != "}":
            key, _, value = line.partition(" ")
            directives.setdefault(key, []).append(value.strip())
    return Module(Path(path), name, declarations("input"), declarations("output"), script_defs, script, stub, directives)


# ----------------------------------------------------------------------------------------------
# Evaluating the Groovy subset


class Null:
    """Groovy's null for attribute chains such as `task.ext.args` when ext.args is unset."""

    def __getattr__(self, name: str) -> "Null":
        return self

    def __bool__(self) -> bool:
        return False

    def __str__(self) -> str:
        return "null"


class Obj(SimpleNamespace):
    """A map-like object (meta, task, task.ext): missing keys read as null, as in Groovy."""

    def __getattr__(self, name: str) -> Any:
        return Null()


def truthy(value: Any) -> bool:
    if isinstance(value, (Null, type(None))):
        return False
    if isinstance(value, (str, list, tuple, dict)):
        return len(value) > 0
    return bool(value)


def to_string(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        # Nextflow renders a list of staged files blank-separated.
        return " ".join(to_string(v) for v in value)
    if isinstance(value, Null) or value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*")
      | (?P<num>\d+)
      | (?P<op>\?:|\?|:|\(|\)|==|!=|\|\||&&|!)
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
    )""",
    re.X,
)


class _Expr:
    """Recursive descent over: ternary/elvis, ||, &&, ==/!=, !, literals, dotted names, parentheses."""

    def __init__(self, text: str, scope: dict[str, Any]):
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        text = text.strip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise GroovySubsetError(f"cannot read Groovy expression {text!r} at {text[pos:]!r}")
            kind = m.lastgroup
            self.tokens.append((kind, m.group(kind)))
            pos = m.end()
            while pos < len(text) and text[pos].isspace():
                pos += 1
        self.i = 0
        self.scope = scope

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value):
            raise GroovySubsetError(f"expected {value!r}, got {tok!r}")
        self.i += 1
        return tok

    def parse(self) -> Any:
        value = self.ternary()
        if self.peek() is not None:
            raise GroovySubsetError(f"unexpected {self.peek()!r}")
        return value

    def ternary(self) -> Any:
        cond = self.or_()
        tok = self.peek()
        if tok and tok[1] == "?:":
            self.take()
            other = self.ternary()
            return cond if truthy(cond) else other
        if tok and tok[1] == "?":
            self.take()
            yes = self.ternary()
            self.take(":")
            no = self.ternary()
            return yes if truthy(cond) else no
        return cond

    def or_(self) -> Any:
        left = self.and_()
        while self.peek() and self.peek()[1] == "||":
            self.take()
            right = self.and_()
            left = truthy(left) or truthy(right)
        return left

    def and_(self) -> Any:
        left = self.eq()
        while self.peek() and self.peek()[1] == "&&":
            self.take()
            right = self.eq()
            left = truthy(left) and truthy(right)
        return left

    def eq(self) -> Any:
        left = self.unary()
        tok = self.peek()
        if tok and tok[1] in ("==", "!="):
            self.take()
            right = self.unary()
            same = _groovy_equal(left, right)
            return same if tok[1] == "==" else not same
        return left

    def unary(self) -> Any:
        if self.peek() and self.peek()[1] == "!":
            self.take()
            return not truthy(self.unary())
        return self.atom()

    def atom(self) -> Any:
        kind, value = self.take()
        if kind == "str":
            if value[0] == "'":
                return _unescape_single(value[1:-1])
            return render_gstring(value[1:-1], self.scope)
        if kind == "num":
            return int(value)
        if kind == "name":
            if value in ("null", "true", "false"):
                return {"null": Null(), "true": True, "false": False}[value]
            return lookup(value, self.scope)
        if value == "(":
            inner = self.ternary()
            self.take(")")
            return inner
        raise GroovySubsetError(f"unexpected token {value!r}")


def _groovy_equal(a: Any, b: Any) -> bool:
    if isinstance(a, Null) or a is None:
        return isinstance(b, Null) or b is None
    if isinstance(b, Null) or b is None:
        return False
    return a == b


def _unescape_single(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), text)


def lookup(dotted: str, scope: dict[str, Any]) -> Any:
    head, *rest = dotted.split(".")
    if head not in scope:
        raise GroovySubsetError(f"unknown variable {head!r} (not an input, `task`, or a def)")
    value = scope[head]
    for attr in rest:
        if isinstance(value, dict):
            value = value.get(attr, Null())
        else:
            value = getattr(value, attr)
    return value


def evaluate(expr: str, scope: dict[str, Any]) -> Any:
    return _Expr(expr, scope).parse()


def _matching_brace(text: str, start: int) -> int:
    depth, quote, i = 0, None, start
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise GroovySubsetError("unbalanced ${...} in GString")


def render_gstring(source: str, scope: dict[str, Any]) -> str:
    """Interpolate a Groovy double-quoted/triple-quoted string: `${expr}`, `$name.attr`, and the escapes
    `\\$`, `\\\\`, `\\"`; a backslash before anything else is kept (as Groovy keeps it in slashy
    positions our scripts use, e.g. sed expressions written `\\\\(`)."""
    out, i = [], 0
    while i < len(source):
        ch = source[i]
        if ch == "\\" and i + 1 < len(source):
            nxt = source[i + 1]
            if nxt in "$\\\"'":
                out.append(nxt)
            elif nxt == "n":
                out.append("\n")
            elif nxt == "t":
                out.append("\t")
            elif nxt == "\n":
                pass  # line continuation inside the string
            else:
                raise GroovySubsetError(f"unsupported escape \\{nxt} in GString")
            i += 2
            continue
        if ch == "$":
            if source.startswith("${", i):
                end = _matching_brace(source, i + 1)
                out.append(to_string(evaluate(source[i + 2 : end], scope)))
                i = end + 1
                continue
            m = re.match(r"\$([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)", source[i:])
            if m:
                out.append(to_string(lookup(m.group(1), scope)))
                i += m.end()
                continue
            raise GroovySubsetError(f"bare '$' in GString at {source[i:i + 20]!r}: escape it as \\$")
        out.append(ch)
        i += 1
    return "".join(out)


def strip_indent(text: str) -> str:
    """Groovy's String.stripIndent(): remove the smallest indentation of the non-blank lines."""
    lines = text.split("\n")
    if lines and not lines[0].strip():
        lines = lines[1:]
    indents = [len(l) - len(l.lstrip()) for l in lines if l.strip()]
    cut = min(indents) if indents else 0
    return "\n".join(l[cut:] if l.strip() else "" for l in lines)


def run_defs(defs: list[str], scope: dict[str, Any]) -> None:
    for stmt in defs:
        m = re.fullmatch(r"def\s+([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.+)", stmt)
        if not m:
            raise GroovySubsetError(f"script statement is not `def name = expression`: {stmt!r}")
        scope[m.group(1)] = evaluate(m.group(2), scope)


# ----------------------------------------------------------------------------------------------
# Staging inputs, rendering, running, checking outputs


def _stage_name(pattern: str | None, source: Path, index: int) -> str:
    if not pattern:
        return source.name
    # Nextflow: '*' in the last segment is the file's own name; '?' is the 1-based index.
    head, _, last = pattern.rpartition("/")
    head = head.replace("?", str(index + 1))
    last = source.name if last == "*" else last.replace("?", str(index + 1))
    return f"{head}/{last}" if head else last


def stage_inputs(module: Module, values: list[Any], workdir: Path) -> dict[str, Any]:
    """Bind input declarations to values and stage files; returns the scope for rendering.

    `values` has one entry per input declaration: for a tuple, a list with one value per item; a
    `path` value is a Path, a list of Paths, or [] (an optional input left empty)."""
    if len(values) != len(module.inputs):
        raise ValueError(f"{module.name}: {len(module.inputs)} input declarations, {len(values)} values given")
    scope: dict[str, Any] = {}
    for decl, value in zip(module.inputs, values):
        item_values = value if len(decl.items) > 1 else [value]
        if len(item_values) != len(decl.items):
            raise ValueError(f"{module.name}: {decl.text!r} needs {len(decl.items)} values")
        for (qualifier, name, opts), item in zip(decl.items, item_values):
            if qualifier == "val":
                scope[name] = item
                continue
            files = item if isinstance(item, (list, tuple)) else [item]
            staged = []
            for index, source in enumerate(files):
                target = workdir / _stage_name(opts.get("stageAs"), Path(source), index)
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.exists() or target.is_symlink():
                    raise ValueError(f"{module.name}: input file name collision at {target.name}")
                target.symlink_to(Path(source).resolve())
                staged.append(str(target.relative_to(workdir)))
            scope[name] = staged if isinstance(item, (list, tuple)) else staged[0]
    return scope


def render_script(module: Module, scope: dict[str, Any], stub: bool = False) -> str:
    local = dict(scope)
    if not stub:
        run_defs(module.script_defs, local)
    return strip_indent(render_gstring(module.stub if stub else module.script, local))


def _brace_expand(pattern: str) -> list[str]:
    m = re.search(r"\{([^{}]*)\}", pattern)
    if not m:
        return [pattern]
    return [p for alt in m.group(1).split(",") for p in _brace_expand(pattern[: m.start()] + alt + pattern[m.end() :])]


def string_literal(source: str, scope: dict[str, Any]) -> str:
    """The value of a Groovy string literal as written in a declaration: `'...'` (escapes only) or `"..."`
    (a GString, interpolated with `scope`)."""
    source = source.strip()
    if len(source) >= 2 and source[0] == source[-1] == "'":
        return _unescape_single(source[1:-1])
    if len(source) >= 2 and source[0] == source[-1] == '"':
        return render_gstring(source[1:-1], scope)
    raise GroovySubsetError(f"not a string literal: {source!r}")


@dataclass
class TaskResult:
    workdir: Path
    script: str
    returncode: int
    stdout: str
    stderr: str
    outputs: dict[str, list[Path]]  # emit name (or declaration text) -> files found
    missing: list[str]  # declared, non-optional outputs with no file
    values: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)  # emit -> tuples of val/eval outputs
    topics: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)  # topic -> tuples sent to it
    eval_errors: list[str] = field(default_factory=list)  # eval commands that failed (each fails the task)

    def files(self, emit: str) -> list[Path]:
        return self.outputs.get(emit, [])


def collect_outputs(module: Module, scope: dict[str, Any], workdir: Path) -> tuple[dict[str, list[Path]], list[str]]:
    outputs: dict[str, list[Path]] = {}
    missing: list[str] = []
    for decl in module.outputs:
        key = str(decl.options.get("emit", decl.text))
        found: list[Path] = []
        for qualifier, name, opts in decl.items:
            if qualifier != "path":
                continue
            if name[:1] in "'\"":
                pattern = string_literal(name, scope)
            else:
                pattern = to_string(lookup(name, scope))
            matches: list[Path] = []
            for alt in _brace_expand(pattern):
                matches += [Path(p) for p in sorted(glob.glob(str(workdir / alt)))]
            optional = bool(decl.options.get("optional") or opts.get("optional"))
            if not matches and not optional:
                missing.append(f"{key}: {pattern}")
            found += matches
        outputs[key] = found
    return outputs, missing


def run_eval(command: str, workdir: Path, env: dict[str, str] | None, timeout: float = 300) -> tuple[int, str, str]:
    """One `eval` output as Nextflow's task wrapper runs it: `bash -c "<command>"` (its `"` escaped, so the
    task shell expands any `$` first) in the task folder; (exit status, stdout without its trailing
    newlines, stderr)."""
    line = 'bash -c "' + command.replace('"', '\\"') + '"'
    proc = subprocess.run(["bash", "-c", line], cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout.rstrip("\n"), proc.stderr


def collect_values(module: Module, scope: dict[str, Any], workdir: Path, env: dict[str, str] | None
                   ) -> tuple[dict[str, list[tuple[Any, ...]]], dict[str, list[tuple[Any, ...]]], list[str]]:
    """The tuples of the output declarations made only of `val`/`eval` items (the tool versions), by emit
    and by topic, evaluating each `eval`; and the eval commands that failed."""
    values: dict[str, list[tuple[Any, ...]]] = {}
    topics: dict[str, list[tuple[Any, ...]]] = {}
    errors: list[str] = []
    for decl in module.outputs:
        if not decl.items or any(q not in ("val", "eval") for q, _, _ in decl.items):
            continue
        row: list[Any] = []
        for qualifier, name, _ in decl.items:
            if qualifier == "val":
                row.append(string_literal(name, scope) if name[:1] in "'\"" else lookup(name, scope))
                continue
            command = string_literal(name, scope)
            status, out, err = run_eval(command, workdir, env)
            if status != 0:
                errors.append(f"eval({command!r}) exited {status}: {err.strip()[-400:]}")
            row.append(out)
        values.setdefault(str(decl.options.get("emit", decl.text)), []).append(tuple(row))
        if decl.options.get("topic"):
            topics.setdefault(str(decl.options["topic"]), []).append(tuple(row))
    return values, topics, errors


def run_task(module: Module, values: list[Any], workdir: Path, ext_args: str | None = None, cpus: int = 1,
             env: dict[str, str] | None = None, stub: bool = False, timeout: float = 900) -> TaskResult:
    workdir.mkdir(parents=True, exist_ok=True)
    scope = stage_inputs(module, values, workdir)
    ext = Obj(args=ext_args) if ext_args is not None else Obj()
    scope["task"] = Obj(ext=ext, cpus=cpus, process=module.name, attempt=1, index=1)
    script = render_script(module, scope, stub=stub)
    (workdir / ".command.sh").write_text(script + "\n")
    proc = subprocess.run(["bash", "-euo", "pipefail", ".command.sh"], cwd=workdir, env=env, capture_output=True,
                          text=True, timeout=timeout)
    (workdir / ".command.out").write_text(proc.stdout)
    (workdir / ".command.err").write_text(proc.stderr)
    outputs, missing = collect_outputs(module, scope, workdir)
    result = TaskResult(workdir, script, proc.returncode, proc.stdout, proc.stderr, outputs, missing)
    if proc.returncode == 0:  # under `set -e` a failed script never reaches the appended eval commands
        result.values, result.topics, result.eval_errors = collect_values(module, scope, workdir, env)
    return result

"""The catalog of environment variables cannot drift from the code or from docs/configuration.md.

The source is scanned (not imported): every variable a reader names (``env``, ``env_int``,
``env_float``, ``env_bool``, ``os.environ``, ``getenv``), every ``"SOMA_…"`` string and every
``${NAME}`` of the Procfile must be in the catalog; a literal default in the code must be the
catalog's; the reader's type must be the catalog's type; and the document must be what the
generator prints.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from somaagent import settings_doc
from somaagent.settings_catalog import BOOLEAN, INTEGER, NOT_SETTINGS, NUMBER, TEXT, variables

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("somaagent", "conversations", "tools", "memory", "documents", "manage.py", "celeryconfig.py")
NAME = re.compile(r"^[A-Z][A-Z0-9_]+$")
SOMA_STRING = re.compile(r"""["'](SOMA_[A-Z0-9_]+)["']""")
READER_KIND = {"env": TEXT, "env_int": INTEGER, "env_float": NUMBER, "env_bool": BOOLEAN}
ENVIRON_READERS = {"get", "setdefault", "pop", "getenv"}


def _files() -> Iterator[Path]:
    for name in SOURCES:
        path = ROOT / name
        yield from ([path] if path.is_file() else sorted(path.rglob("*.py")))


def _called_name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _reads_environ(call: ast.Call) -> bool:
    """``os.environ.get(…)``, ``environ.get(…)``, ``os.getenv(…)`` (not ``request.META.get``)."""
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr == "getenv":
        return True
    owner = func.value if isinstance(func, ast.Attribute) else None
    return (isinstance(owner, ast.Name) and owner.id == "environ") or (
        isinstance(owner, ast.Attribute) and owner.attr == "environ"
    )


def _constant(node: ast.expr) -> object:
    """A literal default, with the arithmetic of constants (``24 * 3600``) worked out."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult | ast.Add):
        left, right = _constant(node.left), _constant(node.right)
        if isinstance(left, int | float) and isinstance(right, int | float):
            return left * right if isinstance(node.op, ast.Mult) else left + right
    return None


def _spelled(value: object) -> str | None:
    """A default as the environment would spell it."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value
    return None


def _reads() -> list[tuple[str, str, str, str | None]]:
    """(file, variable, reader, literal default or None) for every read in the source."""
    found = []
    for path in _files():
        where = str(path.relative_to(ROOT))
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and node.args:
                first = node.args[0]
                if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                    continue
                if not NAME.match(first.value):
                    continue
                reader = _called_name(node)
                if reader in READER_KIND:
                    default = _spelled(_constant(node.args[1])) if len(node.args) > 1 else None
                    found.append((where, first.value, reader, default))
                elif reader in ENVIRON_READERS and _reads_environ(node):
                    found.append((where, first.value, "environ", None))
            elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
                value = node.value
                key = node.slice.value
                if (
                    isinstance(value, ast.Attribute)
                    and value.attr == "environ"
                    and isinstance(key, str)
                    and NAME.match(key)
                ):
                    found.append((where, key, "environ", None))
        for name in SOMA_STRING.findall(path.read_text()):
            found.append((where, name, "string", None))
    procfile = (ROOT / "Procfile").read_text()
    for name, default in re.findall(r"\$\{([A-Z][A-Z0-9_]*)(?::-([^}]*))?\}", procfile):
        found.append(("Procfile", name, "procfile", default or None))
    return found


def test_the_scan_finds_what_it_should() -> None:
    """The scanner itself: it sees reads of each kind (else the checks below prove nothing)."""
    reads = {(name, reader) for _, name, reader, _ in _reads()}
    for expected in (
        ("SOMA_TURN_LEASE_SECONDS", "env_float"),
        ("SOMA_MAX_MESSAGE_CHARS", "env_int"),
        ("SOMA_TITLE_FROM_MODEL", "env_bool"),
        ("SOMA_MEMORY_URL", "env"),
        ("SOMA_MODEL_PRICES", "environ"),
        ("FLOWER_BASIC_AUTH", "environ"),
        ("TOOLS_CONCURRENCY", "procfile"),
    ):
        assert expected in reads, expected
    assert len({name for name, _ in reads}) > 100


def test_every_variable_the_code_reads_is_in_the_catalog() -> None:
    known = variables()
    missing = sorted(
        {
            f"{name} ({where})"
            for where, name, _, _ in _reads()
            if name not in known and name not in NOT_SETTINGS
        }
    )
    assert not missing, (
        "add these to somaagent/settings_catalog.py, then run python -m somaagent.settings_doc --write:\n"
        + "\n".join(missing)
    )


def test_the_catalog_names_only_variables_the_code_reads() -> None:
    read = {name for _, name, _, _ in _reads()}
    stale = sorted(set(variables()) - read)
    assert not stale, f"in the catalog but read nowhere: {stale}"


def test_literal_defaults_and_types_are_the_catalogs() -> None:
    catalog = variables()
    wrong = []
    for where, name, reader, default in _reads():
        variable = catalog.get(name)
        if variable is None:
            continue
        kind = READER_KIND.get(reader)
        if kind not in (None, TEXT) and kind != variable.kind:  # env() also tests typed ones for presence
            wrong.append(f"{name}: {where} reads it as {kind}, the catalog says {variable.kind}")
        if default is not None and default != "" and not variable.computed and default != variable.default:
            wrong.append(f"{name}: {where} defaults to {default!r}, the catalog says {variable.default!r}")
    assert not wrong, "\n".join(wrong)


def test_docs_configuration_is_what_the_generator_prints() -> None:
    assert settings_doc.DOC_PATH.read_text() == settings_doc.render(), (
        "docs/configuration.md is out of date: run python -m somaagent.settings_doc --write"
    )


def test_the_deployment_files_set_only_variables_the_catalog_knows() -> None:
    """A misspelt ``SOMA_…`` in compose, the Dockerfile or the k8s manifests would be silently ignored."""
    files = [ROOT / "docker-compose.yml", ROOT / "Dockerfile", *sorted((ROOT / "deploy").rglob("*"))]
    named = {
        (path.name, name)
        for path in files
        if path.is_file()
        for name in re.findall(r"\b(SOMA_[A-Z0-9_]+)\b", path.read_text())
    }
    assert named, "the scan found no SOMA_ variable in the deployment files"
    unknown = sorted(f"{name} ({where})" for where, name in named if name not in variables())
    assert not unknown, f"set by a deployment file but read nowhere: {unknown}"

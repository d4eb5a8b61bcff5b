from __future__ import annotations

import ast
import sys
from pathlib import Path

import runtime
import runtime.auth
import runtime.testing

RUNTIME = Path(runtime.__file__).parent


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_runtime_never_imports_the_component():
    offenders = [
        str(path.relative_to(RUNTIME))
        for path in RUNTIME.rglob("*.py")
        if any(name == "lib" or name.startswith("lib.") for name in imported_modules(path))
    ]
    assert offenders == []


def test_public_api_is_pinned():
    assert sorted(runtime.__all__) == runtime.__all__
    assert runtime.__all__ == [
        "AsyncAuthorizedSession",
        "AsyncContext",
        "AsyncResponse",
        "AuthError",
        "Context",
        "Event",
        "EventKind",
        "Expression",
        "ExpressionError",
        "InvalidInput",
        "Message",
        "ObjectStorage",
        "ObjectStorageError",
        "Outcome",
        "StepCancelled",
        "StepError",
        "attachment_storage",
        "bounded",
        "compiled_expression",
        "describe_failure",
        "host_of",
        "retry_after_seconds",
    ]
    from runtime import errors, network
    from runtime.auth import async_session, retry
    from runtime.mapping import jsonata
    from runtime.platform import object_storage
    from runtime.step import context, events, executor

    homes = (context, errors, events, executor, async_session, retry, network, object_storage,
             jsonata)  # fmt: skip
    assert runtime.bounded is sys.modules["runtime.bounded"]  # the module, as a public name
    assert runtime.compiled_expression is jsonata.compiled
    for name in (n for n in runtime.__all__ if n not in ("bounded", "compiled_expression")):
        defined_in = next(m for m in homes if hasattr(m, name))
        assert getattr(runtime, name) is getattr(defined_in, name), name
    assert runtime.testing.__all__ == [
        "Event",
        "Outcome",
        "run_select",
        "run_step",
        "run_step_outcome",
        "run_verify",
    ]
    assert sorted(runtime.auth.__all__) == sorted(
        [
            "PROFILES",
            "AsyncAuthorizedSession",
            "AsyncResponse",
            "AuthError",
            "AuthorizedSession",
            "BodyNotReplayable",
            "ClientMisconfigured",
            "CredentialError",
            "CredentialLockUnavailable",
            "CredentialUse",
            "Credentials",
            "InsufficientScope",
            "KeysConflict",
            "ProviderProfile",
            "ReauthRequired",
            "TokenEndpointUnavailable",
            "credential_use",
            "profile_named",
        ]
    )
    # Everything __all__ promises is there to import; nothing it forgot is exported.
    namespace: dict[str, object] = {}
    exec("from runtime.auth import *", namespace)  # noqa: S102 - the import users write
    assert sorted(k for k in namespace if not k.startswith("__")) == sorted(runtime.auth.__all__)


def _public_imports(body: list[ast.stmt]) -> set[str]:
    return {
        alias.asname or alias.name
        for node in body
        if isinstance(node, ast.ImportFrom) and node.module not in ("__future__", "typing")
        for alias in node.names
    }


def test_what_the_public_packages_import_is_what_they_export():
    """``runtime`` and ``runtime.auth`` only gather public names: one imported and left out
    of ``__all__`` (a forgotten export) or listed there and not imported fails here, not in
    an author's ``from runtime import *``. ``runtime`` imports its names on first use (the
    container's health check imports the package): what it imports for the type checker,
    what it loads on use and what it exports are one list."""
    auth = ast.parse(Path(runtime.auth.__file__).read_text())
    assert _public_imports(auth.body) == set(runtime.auth.__all__)
    package = ast.parse(Path(runtime.__file__).read_text())
    for_types = next(
        node
        for node in package.body
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
    )
    assert _public_imports(for_types.body) == set(runtime.__all__)
    assert set(runtime._HOMES) == set(runtime.__all__)
    namespace: dict[str, object] = {}
    exec("from runtime import *", namespace)  # noqa: S102 - the import users write
    assert sorted(k for k in namespace if not k.startswith("__")) == sorted(runtime.__all__)


def test_the_public_face_carries_nothing_of_benchmarks_or_demos():
    for module in (runtime, runtime.testing, runtime.auth):
        names = {name.lower() for name in dir(module)}
        assert not {n for n in names if "bench" in n or "demo" in n or "imported_at" in n}


def test_the_package_says_it_is_typed():
    assert (RUNTIME / "py.typed").is_file()


def test_the_readme_layout_lists_every_package_of_the_runtime_and_nothing_else():
    readme = (RUNTIME.parent / "README.md").read_text()
    layout = readme.split("## Layout", 1)[1].split("```")[1]
    listed = {line.split()[0].rstrip("/") for line in layout.strip().splitlines()}
    packages = {
        str(path.parent.relative_to(RUNTIME.parent))
        for path in RUNTIME.rglob("__init__.py")
        if path.parent.parent in (RUNTIME, RUNTIME / "worker")
    }
    assert packages <= listed
    for entry in listed - {"runtime/*.py"}:
        assert (RUNTIME.parent / entry).exists(), entry

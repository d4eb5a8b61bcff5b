"""Which part of the runtime may import which: the directions, written down once.

``runtime/*.py`` at the top are shared by everyone (errors, logging and redaction, bounds,
ids, network errors in words). Each package may import itself, the shared modules, and what
its row allows. The test fails when a lower layer imports a higher one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import runtime

RUNTIME = Path(runtime.__file__).parent
SHARED = {"runtime.errors", "runtime.log", "runtime.redact", "runtime.bounded", "runtime.ids",
          "runtime.deadlines", "runtime.watchdog", "runtime.health",
          "runtime.network", "runtime.metrics", "runtime"}  # fmt: skip

ALLOWED: dict[str, set[str]] = {
    # credentials and sessions know nothing of steps, the worker or the platform
    "runtime.auth": set(),
    # JSONata with the platform's extensions: knows nothing but the shared modules
    "runtime.mapping": set(),
    # the platform's HTTP API (its secrets, object storage) stands below steps
    "runtime.platform": {"runtime.auth"},
    # the component contract knows nothing of AMQP or of the worker
    "runtime.step": {"runtime.auth", "runtime.platform"},
    # the AMQP side knows nothing of auth, steps or the platform: only plain deliveries
    "runtime.worker.amqp": {"runtime.worker.transport"},
    "runtime.worker": {"runtime.auth", "runtime.step", "runtime.platform"},
    "runtime.devtools": {
        "runtime.auth",
        "runtime.step",
        "runtime.platform",
        "runtime.worker",
        "runtime.mapping",
    },
}
OPEN = {"runtime.cli", "runtime.cli_platform", "runtime.__main__", "runtime.testing",
        "runtime.__init__", "runtime.pytest_plugin"}  # fmt: skip
"""The command line and the public face may use anything."""


def module_name(path: Path) -> str:
    return ".".join(("runtime", *path.relative_to(RUNTIME).with_suffix("").parts))


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def layer_of(module: str) -> str | None:
    for layer in sorted(ALLOWED, key=len, reverse=True):
        if module == layer or module.startswith(layer + "."):
            return layer
    return None


def is_runtime_module(name: str) -> bool:
    dotted = name.split(".")
    return name == "runtime" or (
        dotted[0] == "runtime"
        and (RUNTIME.joinpath(*dotted[1:]).with_suffix(".py").exists()
             or RUNTIME.joinpath(*dotted[1:]).is_dir())
    )  # fmt: skip


def test_every_module_imports_only_what_its_layer_allows():
    offences = []
    for path in sorted(RUNTIME.rglob("*.py")):
        module = module_name(path)
        if module in OPEN:
            continue
        layer = layer_of(module)
        allowed = SHARED | ({layer} | ALLOWED[layer] if layer else set())
        for name in sorted(imports(path)):
            if not is_runtime_module(name) or name in SHARED:
                continue
            if not any(name == a or name.startswith(a + ".") for a in allowed - {"runtime"}):
                offences.append(f"{module} imports {name}")
    assert offences == []


def test_every_module_belongs_to_a_layer_or_is_shared():
    homeless = [
        module_name(path)
        for path in RUNTIME.rglob("*.py")
        if module_name(path) not in OPEN | SHARED
        and layer_of(module_name(path)) is None
        and not module_name(path).endswith("__init__")
    ]
    assert homeless == []


def test_pika_is_imported_only_by_the_amqp_package():
    importers = sorted(
        module_name(path)
        for path in RUNTIME.rglob("*.py")
        if any(name == "pika" or name.startswith("pika.") for name in imports(path))
    )
    assert importers
    assert all(name.startswith("runtime.worker.amqp.") for name in importers), importers


def test_the_connector_uses_only_the_runtimes_public_names():
    """lib/ and verifyCredentials.py are a component like any author's: they import only
    what ``runtime`` and ``runtime.auth`` export, so the runtime's insides can change."""
    import runtime.auth

    public = {"runtime": set(runtime.__all__), "runtime.auth": set(runtime.auth.__all__)}
    root = RUNTIME.parent
    offences = []
    for path in sorted([*(root / "lib").rglob("*.py"), root / "verifyCredentials.py"]):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                offences += [
                    f"{path.name} imports {a.name}"
                    for a in node.names
                    if a.name.startswith("runtime.") and a.name not in public
                ]
            elif (
                isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "runtime"
            ):
                allowed = public.get(node.module or "")
                for alias in node.names:
                    if allowed is None or alias.name not in allowed:
                        offences.append(
                            f"{path.relative_to(root)} imports {node.module}.{alias.name}"
                        )
    assert offences == []


def test_every_runtime_logger_is_named_by_its_module():
    """A log line's ``logger`` says which module wrote it: names given by hand drift when
    code moves (one did: the platform's service calls logged as ``runtime.step.service``).
    The one exception is the logger a step writes to, named ``component``."""
    misnamed = []
    for path in sorted(RUNTIME.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called != "get_logger":
                continue
            name = node.args[0]
            by_module = isinstance(name, ast.Name) and name.id == "__name__"
            for_steps = isinstance(name, ast.Constant) and name.value == "component"
            if not (by_module or for_steps):
                misnamed.append(f"{module_name(path)}:{node.lineno}")
    assert misnamed == []


def test_no_module_imports_itself_through_others():
    """No import circle, lazy imports inside functions included: each package reads one
    way, so a module can be understood (and changed) from what stands below it."""
    modules = {module_name(path): path for path in RUNTIME.rglob("*.py")}
    modules = {name.removesuffix(".__init__"): path for name, path in modules.items()}

    def resolved(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    # ``runtime`` itself is the public face (OPEN): it gathers names on first use.
    graph = {
        name: {r for r in map(resolved, imports(path)) if r and r not in (name, "runtime")}
        for name, path in modules.items()
        if name != "runtime"
    }
    circles = []
    for start in graph:
        stack, seen = [(start, (start,))], set()
        while stack:
            name, trail = stack.pop()
            for target in graph.get(name, ()):
                if target == start:
                    circles.append(" -> ".join((*trail, start)))
                elif target not in seen:
                    seen.add(target)
                    stack.append((target, (*trail, target)))
    assert circles == []

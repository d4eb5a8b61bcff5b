"""``python -m runtime new DIR``: a new component whose tests pass as written.

The files come from ``template/``: each ``*.tmpl`` is written without the suffix, its
``@@name@@`` markers filled in. The worker's environment in docker-compose.yml is made from
the flow file, so it is exactly what the local platform gives the step.
"""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import runtime
from runtime.devtools.localplatform.flow import load_flow
from runtime.errors import ConfigError

TEMPLATE = Path(__file__).parent / "template"
RUNTIME_DISTRIBUTION = "eio-python-runtime"
_RENAMED = {"gitignore": ".gitignore"}
COMPOSE = "docker-compose.yml"
FLOW = Path("flows/get-record.json")


def write_component(directory: Path, title: str | None = None) -> list[Path]:
    """Write the component into ``directory`` (absent or empty); return the files written.

    Raises:
        ConfigError: the directory exists and is not empty.
    """
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise ConfigError(f"{directory} exists and is not empty: choose a new folder")
    title = title or directory.resolve().name.replace("-", " ").replace("_", " ").title()
    values = {
        "title": title,
        "package": _package_name(title),
        "runtime_source": runtime_source(),
    }
    written: list[Path] = []
    # The compose file last: its worker environment comes from the flow file written before.
    sources = sorted(TEMPLATE.rglob("*.tmpl"), key=lambda p: p.name == COMPOSE + ".tmpl")
    for source in sources:
        if source.name == COMPOSE + ".tmpl":
            values["worker_environment"] = _worker_environment(directory / FLOW)
        relative = source.relative_to(TEMPLATE).with_suffix("")
        relative = relative.with_name(_RENAMED.get(relative.name, relative.name))
        target = directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(_fill(source.read_text(), values))
        if relative.parts[0] == "scripts" and relative.suffix != ".sh":
            target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        written.append(target)
    return written


def runtime_source() -> str:
    """Where the generated project installs the runtime from: this checkout when the
    runtime runs from one, else the distribution's name on the package index."""
    checkout = Path(runtime.__file__).resolve().parent.parent
    pyproject = checkout / "pyproject.toml"
    if pyproject.is_file() and f'name = "{RUNTIME_DISTRIBUTION}"' in pyproject.read_text():
        return str(checkout)
    return RUNTIME_DISTRIBUTION


def _fill(text: str, values: dict[str, str]) -> str:
    return re.sub(r"@@(\w+)@@", lambda m: values[m.group(1)], text)


def _package_name(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "component"


def _worker_environment(flow_file: Path) -> str:
    """The worker service's environment: what the local platform gives the flow's step."""
    flow = load_flow(flow_file).model_copy(
        update={"amqp_url": "amqp://guest:guest@rabbitmq:5672/", "credential_lock_url": ""}
    )
    environment = {**flow.worker_env("http://platform:9000"), "ELASTICIO_METRICS_PORT": "9464"}
    return "\n".join(f"      {name}: {json.dumps(value)}" for name, value in environment.items())

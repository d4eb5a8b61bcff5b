"""``python -m runtime``: the command line. Parsing, dispatch and exit codes only.

Exit codes: 0 success, 1 the step or service reported an error, 2 bad input (arguments,
files, settings, component.json), never a traceback for any of those.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from runtime.cli_platform import add_platform_commands
from runtime.errors import ConfigError, StepError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"

Command = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        raise SystemExit(EXIT_USAGE)


def _add_component_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--component",
        metavar="DIR",
        help="the component's folder (default: the working folder, or "
        "ELASTICIO_COMPONENT_PATH under it)",
    )


def _add_log_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-format",
        choices=["json", "console", "auto"],
        help="log lines as JSON or for people (default: LOG_FORMAT, else console in a "
        "terminal and JSON elsewhere)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m runtime",
        description="Run and check integration components (elastic.io sailor protocol).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    _add_platform_facing(commands)
    _add_local_tools(commands)
    _add_local_platform(commands)
    return parser


def _add_platform_facing(commands: Any) -> None:
    """What the platform runs: the worker and the service calls."""
    worker = commands.add_parser(
        "run",
        help="run the worker: consume the step's queue and publish its events",
        description="Run the worker as the platform starts it: settings come from the "
        "ELASTICIO_* environment variables (see the README), component.json from the working "
        "folder or ELASTICIO_COMPONENT_PATH. Exit codes: 0 stopped cleanly, 1 failed, "
        "2 bad settings or component.",
    )
    _add_log_option(worker)
    worker.set_defaults(handler=_run)

    from runtime.health import add_arguments as add_health_arguments

    health = commands.add_parser(
        "health",
        help="exit 0 if the worker is healthy (for container health checks)",
        description="With ELASTICIO_METRICS_PORT set, asks the worker's probe on that port "
        "(/readyz, or /livez with --probe live). Without it, checks the health file "
        "(ELASTICIO_HEALTH_FILE) the worker touches every second while it consumes. "
        "Exit code 0 healthy, 1 not.",
    )
    add_health_arguments(health)
    health.set_defaults(handler=_health)

    service = commands.add_parser(
        "service",
        help="answer one of the platform's service calls and POST the result",
        description="Run verifyCredentials, getMetaModel or selectModel as the platform does: "
        "input from ELASTICIO_CFG, ELASTICIO_ACTION_OR_TRIGGER and ELASTICIO_GET_MODEL_METHOD; "
        "the result is POSTed to ELASTICIO_POST_RESULT_URL. Exit codes: 0 success posted, "
        "1 error posted (or posting failed), 2 ELASTICIO_POST_RESULT_URL missing.",
    )
    service.add_argument("method", choices=["verifyCredentials", "getMetaModel", "selectModel"])
    service.set_defaults(handler=_service)


def _add_local_tools(commands: Any) -> None:
    """What a component author runs: exec, validate, sign-in."""
    run_one = commands.add_parser(
        "exec",
        help="run one step locally on a message and print its events as JSON lines",
        description="Run one trigger or action of the component on a message from a file and "
        "print every event it emits as one JSON line on stdout (logs go to stderr). "
        "Exit code 0 when no error event was emitted, 1 otherwise.",
    )
    run_one.add_argument("step", help="the trigger or action's key in component.json")
    run_one.add_argument(
        "--msg", metavar="FILE", help="JSON message ({body: ...}; - reads stdin); default {}"
    )
    run_one.add_argument("--cfg", metavar="FILE", help="JSON step configuration; default {}")
    run_one.add_argument("--snapshot", metavar="FILE", help="JSON snapshot; default {}")
    run_one.add_argument(
        "--credentials",
        metavar="FILE",
        help="credentials file; with --credential NAME, its entry is merged into cfg and "
        "refreshed tokens are written back",
    )
    run_one.add_argument("--credential", metavar="NAME", help="entry of the credentials file")
    run_one.add_argument(
        "--timeout", type=float, default=300.0, help="seconds before the step is stopped"
    )
    _add_component_option(run_one)
    _add_log_option(run_one)
    run_one.set_defaults(handler=_exec)

    check = commands.add_parser(
        "validate",
        help="check component.json and every step it names",
        description="Check component.json, its metadata files and every step module: each "
        "imports and has the functions component.json refers to.",
    )
    _add_component_option(check)
    _add_log_option(check)
    check.set_defaults(handler=_validate)

    auth = commands.add_parser(
        "auth",
        help="credentials for local runs: sign in to get the first tokens",
        description="Manage the credentials file used by local runs.",
    )
    auth_commands = auth.add_subparsers(dest="auth_command", metavar="ACTION", parser_class=_Parser)
    auth_commands.required = True
    sign_in = auth_commands.add_parser(
        "login",
        help="run the OAuth2 authorization-code flow (PKCE) and save the tokens",
        description="Print the provider's authorize URL, wait on a loopback redirect URI for "
        "the code, exchange it and write the tokens into the credentials file entry NAME "
        "(which holds clientId, clientSecret, authorizeUrl, tokenUrl, scopes, or a provider).",
    )
    sign_in.add_argument("name", help="the entry of the credentials file")
    _add_credentials_file_option(sign_in)
    sign_in.add_argument("--port", type=int, default=0, help="loopback port (default: any)")
    sign_in.add_argument("--timeout", type=float, default=300.0, help="seconds to wait")
    sign_in.set_defaults(handler=_login)
    demo_sign_in = auth_commands.add_parser(
        "demo",
        help="sign in to the demo provider (python -m runtime demo-api) and save the tokens",
        description="Walk the demo provider's authorization-code flow without a browser (it "
        "consents at once) and write the signed-in credential into the credentials file.",
    )
    demo_sign_in.add_argument("url", help="the demo provider, e.g. http://127.0.0.1:8400")
    demo_sign_in.add_argument("--name", default="demo", help="the entry to write")
    _add_credentials_file_option(demo_sign_in)
    demo_sign_in.set_defaults(handler=_demo_sign_in)

    new = commands.add_parser(
        "new",
        help="write a new component: an action, a polling trigger, tests, Dockerfile",
        description="Write a new component into DIR (which must be empty or absent): "
        "component.json with one action and one polling trigger, verifyCredentials.py, "
        "lib/, tests that use this runtime's pytest plugin, pyproject.toml, a Dockerfile, "
        "a docker-compose.yml wired to the local platform, and a README with its two "
        "commands. Its tests pass as written.",
    )
    new.add_argument("directory", metavar="DIR")
    new.add_argument("--name", help="the component's title (default: from DIR)")
    new.set_defaults(handler=_new)


def _add_credentials_file_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--credentials",
        metavar="FILE",
        help="credentials file (default: RUNTIME_CREDENTIALS_FILE, else credentials.json)",
    )


def _add_local_platform(commands: Any) -> None:
    """The whole product on one machine: demo, local platform, demo API."""
    demo = commands.add_parser(
        "demo",
        help="run the demo's whole flows on this machine: provider, platform, workers, events",
        description="Start the demo OAuth2 API and the local platform with the demo's two "
        "whole flows and their workers (a request-reply webhook flow: the platform's REST "
        "step, three replicas, then a Node.js step that replies; a polling flow every 3 s), "
        "call the webhook in rounds across token expiries, print the events as they come "
        "back, and stop. Token refreshes happen on the way.",
    )
    demo.add_argument(
        "--amqp-url",
        default=None,
        help="broker (default: RABBITMQ_URL, else amqp://guest:guest@127.0.0.1:5672/)",
    )
    demo.add_argument("--flows", default="demo/flows", help="folder of the demo's flow files")
    demo.add_argument(
        "--external",
        action="store_true",
        help="only run the scenario: provider, platform and workers run elsewhere (compose)",
    )
    demo.add_argument(
        "--platform", metavar="URL", help="with --external: the local platform, for its webhook"
    )
    demo.add_argument(
        "--provider", metavar="URL", help="with --external: the demo provider, for its counts"
    )
    demo.add_argument(
        "--credentials",
        metavar="FILE",
        help="with --external: the platform's credentials file, to check the grants are alive",
    )
    demo.set_defaults(handler=_demo)

    add_platform_commands(commands)

    demo_api = commands.add_parser(
        "demo-api",
        help="serve the demo OAuth2 provider and paginated API on 127.0.0.1",
        description="A local OAuth2 provider (tokens that expire in seconds, refresh tokens "
        "that rotate) and a protected, paginated REST API, for trying the runtime out.",
    )
    demo_api.add_argument("--port", type=int, default=8400)
    demo_api.add_argument("--host", default="127.0.0.1")
    demo_api.add_argument(
        "--access-lifetime", type=float, default=5.0, help="seconds an access token lives"
    )
    demo_api.set_defaults(handler=_demo_api)


def _service(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from runtime.worker.service_command import run_service

    return run_service(args.method, os.environ, cwd=Path.cwd())


def _demo(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from runtime import log
    from runtime.devtools.demo.run_demo import run_demo
    from runtime.devtools.stopping import stops_on_signals

    log.configure(fmt="json", level="warning")
    url = args.amqp_url or os.environ.get("RABBITMQ_URL") or DEFAULT_AMQP_URL
    return stops_on_signals(run_demo)(
        amqp_url=url,
        flows_dir=Path(args.flows),
        out=sys.stdout,
        external=args.external,
        platform=args.platform,
        provider=args.provider,
        credentials=Path(args.credentials) if args.credentials else None,
    )


def _login(args: argparse.Namespace) -> int:
    from runtime import log
    from runtime.devtools.local_exec import credentials_file
    from runtime.devtools.login import login

    log.configure()
    login(
        credentials_file(args.credentials),
        args.name,
        port=args.port,
        timeout=args.timeout,
        out=sys.stdout,
    )
    return EXIT_OK


def _demo_sign_in(args: argparse.Namespace) -> int:
    from runtime.devtools.demo.signin import sign_in
    from runtime.devtools.local_exec import credentials_file

    store = credentials_file(args.credentials)
    sign_in(args.url.rstrip("/"), store, args.name)
    sys.stdout.write(f"signed in to {args.url}: entry {args.name!r} of {store.path}\n")
    return EXIT_OK


def _new(args: argparse.Namespace) -> int:
    from pathlib import Path

    from runtime.devtools.scaffold import write_component

    written = write_component(Path(args.directory), args.name)
    sys.stdout.write(
        f"wrote {len(written)} files into {args.directory}; next: cd {args.directory} && "
        "scripts/check\n"
    )
    return EXIT_OK


def _demo_api(args: argparse.Namespace) -> int:
    from runtime.devtools.demo.api import serve

    return serve(host=args.host, port=args.port, access_lifetime=args.access_lifetime)


def _run(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from runtime.worker.run import run_worker

    return run_worker(os.environ, cwd=Path.cwd(), log_format=args.log_format)


def _health(args: argparse.Namespace) -> int:
    import os

    from runtime.health import report

    return report(os.environ, args.probe, args.max_age)


def _exec(args: argparse.Namespace) -> int:
    from runtime.devtools.local_exec import run_exec

    return run_exec(args)


def _validate(args: argparse.Namespace) -> int:
    from runtime.step.validate import run_validate

    return run_validate(args)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Command = args.handler
    try:
        return handler(args)
    except ConfigError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_USAGE
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("runtime.devtools"):
            raise
        sys.stderr.write(
            f"error: '{args.command}' is a tool for local runs, left out of this installation "
            "(the worker's container image carries none); run it from a clone of the "
            "repository (scripts/demo, scripts/check install it) or the Dockerfile's "
            "'local' target\n"
        )
        return EXIT_USAGE
    except StepError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130

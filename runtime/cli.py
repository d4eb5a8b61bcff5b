"""``python -m runtime``: the command line. Parsing, dispatch and exit codes only.

Exit codes: 0 success, 1 the step or service reported an error, 2 bad input (arguments,
files, settings, component.json), never a traceback for any of those.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from runtime.errors import ConfigError, StepError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

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

    worker = commands.add_parser(
        "run",
        help="run the worker: consume the step's queue and publish its events (the default)",
        description="Run the worker as the platform starts it: settings come from the "
        "ELASTICIO_* environment variables (see the README), component.json from the working "
        "folder or ELASTICIO_COMPONENT_PATH. Exit codes: 0 stopped cleanly, 1 failed, "
        "2 bad settings or component.",
    )
    _add_log_option(worker)
    worker.set_defaults(handler=_run)

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
    sign_in.add_argument(
        "--credentials",
        metavar="FILE",
        help="credentials file (default: RUNTIME_CREDENTIALS_FILE, else credentials.json)",
    )
    sign_in.add_argument("--port", type=int, default=0, help="loopback port (default: any)")
    sign_in.add_argument("--timeout", type=float, default=300.0, help="seconds to wait")
    sign_in.set_defaults(handler=_login)

    demo_api = commands.add_parser(
        "demo-api",
        help="serve the demo OAuth2 provider and paginated API on 127.0.0.1",
        description="A local OAuth2 provider (tokens that expire in seconds, refresh tokens "
        "that rotate) and a protected, paginated REST API, for trying the runtime out.",
    )
    demo_api.add_argument("--port", type=int, default=8400)
    demo_api.add_argument(
        "--access-lifetime", type=float, default=5.0, help="seconds an access token lives"
    )
    demo_api.set_defaults(handler=_demo_api)
    return parser


def _login(args: argparse.Namespace) -> int:
    from runtime import log
    from runtime.auth.login import login
    from runtime.local_exec import credentials_file

    log.configure()
    login(
        credentials_file(args.credentials),
        args.name,
        port=args.port,
        timeout=args.timeout,
        out=sys.stdout,
    )
    return EXIT_OK


def _demo_api(args: argparse.Namespace) -> int:
    import time

    from runtime.demo.api import DemoApi
    from runtime.demo.tokens import ProviderSettings

    api = DemoApi(ProviderSettings(access_lifetime=args.access_lifetime), port=args.port)
    api.start()
    sys.stdout.write(f"demo API on {api.url} (client demo-client / demo-secret)\n")
    sys.stdout.flush()
    try:
        while True:
            time.sleep(3600)
    finally:
        api.stop()


def _run(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from runtime.run_worker import run_worker

    return run_worker(os.environ, cwd=Path.cwd(), log_format=args.log_format)


def _exec(args: argparse.Namespace) -> int:
    from runtime.local_exec import run_exec

    return run_exec(args)


def _validate(args: argparse.Namespace) -> int:
    from runtime.validate import run_validate

    return run_validate(args)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Command = args.handler
    try:
        return handler(args)
    except ConfigError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_USAGE
    except StepError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130

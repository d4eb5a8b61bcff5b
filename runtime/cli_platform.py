"""``python -m runtime platform up|send|tail|env|validate|trigger``: the local platform's
arguments (runtime.cli dispatches; runtime.devtools.localplatform.cli runs them)."""

from __future__ import annotations

import argparse
from typing import Any


def add_platform_commands(commands: Any) -> None:
    """``platform up|send|tail|env|validate|trigger``: the local platform."""
    platform = commands.add_parser(
        "platform",
        help="a local stand-in for the iPaaS: topology, platform API, send and tail",
        description="Run the local platform for one or more flow files, send messages to a "
        "step, or print what a step publishes.",
    )
    platform_commands = platform.add_subparsers(
        dest="platform_command", metavar="ACTION", parser_class=type(platform)
    )
    platform_commands.required = True
    up = platform_commands.add_parser(
        "up",
        help="run flows: topology, platform API, routing between steps, their workers",
        description="Declares each flow's queues and exchange, serves the platform API "
        "(step data, accounts, hooks data), saves refreshed keys into the credentials file. "
        "A one-step flow file: prints the environment its worker needs. A whole flow (the "
        "platform's flow JSON with a 'local' section): routes each step's data to its "
        "successors through the edges' mappers, and starts and supervises every node's "
        "workers (unless --no-workers).",
    )
    up.add_argument("--flow", action="append", required=True, metavar="FILE")
    up.add_argument(
        "--data",
        metavar="DIR",
        help="where the platform keeps steps' snapshots between runs "
        "(default: $XDG_DATA_HOME/eio-runtime/local-platform)",
    )
    up.add_argument(
        "--no-workers",
        action="store_true",
        help="whole flows: start no workers (run them yourself, or as containers)",
    )
    up.add_argument("--credentials", metavar="FILE", help="credentials file for the flows")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=9000)
    up.add_argument("--amqp-url", default=None, help="overrides the flow files' amqpUrl")
    _add_lock_option(up)
    up.add_argument(
        "--sign-in-demo",
        metavar="URL",
        help="first sign in to the demo provider at URL and save each credential the flows "
        "use (credentials-file entries and platform-held secrets alike)",
    )
    up.set_defaults(handler=_platform)
    send = platform_commands.add_parser(
        "send",
        help="publish messages to a flow's step, as the previous step would",
        description="Publish messages from a file or stdin: a JSON object (one message), a "
        "JSON array (several), or JSON lines. A value without 'body' is taken as the body.",
    )
    send.add_argument("--flow", required=True, metavar="FILE")
    _add_node_option(send)
    send.add_argument("input", nargs="?", default="-", help="file of messages (default stdin)")
    send.add_argument("--amqp-url", default=None)
    send.set_defaults(handler=_platform)
    tail = platform_commands.add_parser(
        "tail",
        help="print a flow step's outgoing events, decrypted, as JSON lines",
        description="Consumes the step's output queues (data, errors, snapshots, keys, "
        "replies) and prints each event as one JSON line; secrets in updateKeys are hidden.",
    )
    tail.add_argument("--flow", required=True, metavar="FILE")
    _add_node_option(tail)
    tail.add_argument("--count", type=int, default=0, help="stop after this many (0: never)")
    tail.add_argument("--timeout", type=float, default=0, help="stop after this many seconds")
    tail.add_argument("--amqp-url", default=None)
    tail.set_defaults(handler=_platform)
    env = platform_commands.add_parser(
        "env",
        help="print the ELASTICIO_* environment of a flow's step, as shell exports",
        description="Print the environment the platform gives each of the step's workers "
        "(every replica gets the same, the credential lock included).",
    )
    env.add_argument("--flow", required=True, metavar="FILE")
    _add_node_option(env)
    env.add_argument("--api-uri", default="http://127.0.0.1:9000")
    env.add_argument("--amqp-url", default=None)
    _add_lock_option(env)
    env.set_defaults(handler=_platform)
    validate = platform_commands.add_parser(
        "validate",
        help="check flow files: nodes, components, functions, fields, edges, mappers",
        description="Refuses a flow that cannot run, naming the node or edge: an unknown "
        "component or function, a required field missing, an edge to a missing node, a "
        "cycle, a mapper that does not parse.",
    )
    validate.add_argument("flows", nargs="+", metavar="FILE")
    validate.set_defaults(handler=_platform)
    trigger = platform_commands.add_parser(
        "trigger",
        help="start one execution of a polling flow now, as a tick of its schedule would",
        description="Sends the flow's first step the message a tick of its cron sends.",
    )
    trigger.add_argument("--flow", required=True, metavar="FILE")
    trigger.add_argument("--amqp-url", default=None)
    trigger.set_defaults(handler=_platform)


def _add_lock_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lock-url",
        default=None,
        metavar="URL",
        help="ELASTICIO_CREDENTIAL_LOCK_URL for the steps' replicas: redis://HOST:PORT/DB "
        "across machines, file:///DIR on one, '' for none (default: the flow file's "
        "credentialLockUrl, else a file lock in the temporary folder)",
    )


def _add_node_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--node", default=None, help="whole flows: the node (default: the flow's first)"
    )


def _platform(args: argparse.Namespace) -> int:
    from runtime.devtools.localplatform.cli import run_platform

    return run_platform(args)

"""The platform's service calls: ``verifyCredentials``, ``getMetaModel``, ``selectModel``.

These run outside message processing (when a user sets up a connection or opens a step in
the UI). Each builds a ``ctx`` whose ``http`` is bound to the credential and whose only
event is ``updateKeys``, saved through ``on_keys`` (a refreshed token must not be lost
here either).

Unlike the Node.js sailor, ``verify`` returning ``False`` means *not verified*, and a
verifyCredentials.py that fails to load is an error, not a silent "verified".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from runtime.errors import ComponentError, InvalidInput
from runtime.log import get_logger
from runtime.step.bridge import run_to_end
from runtime.step.component import Component
from runtime.step.context import AsyncContext, Context, StepContext, close_async, release
from runtime.step.events import Event
from runtime.step.http import NO_STORES, CredentialStores, session_factory
from runtime.step.loader import load_module, load_step
from runtime.step.results import is_awaited
from runtime.step.run_state import is_async

VERIFY_FILE = "verifyCredentials.py"
OnKeys = Callable[[dict[str, Any]], None]


class ServiceEventError(InvalidInput):
    """A service call emitted an event that only message processing can carry."""


def service_context(
    component: Component,
    cfg: Mapping[str, Any],
    on_keys: OnKeys,
    *,
    stores: CredentialStores = NO_STORES,
    asynchronous: bool = False,
) -> StepContext:
    """The ``ctx`` of a service call: an ``AsyncContext`` for an ``async def`` function."""

    def deliver(event: Event) -> None:
        if event.kind != "updateKeys":
            raise ServiceEventError(
                f"a service call can only emit 'updateKeys', not {event.kind!r}"
            )
        on_keys(event.payload)

    return (AsyncContext if asynchronous else Context)(
        deliver=deliver,
        log=get_logger("component"),
        cfg=cfg,
        http_factory=session_factory(component.credential_fields(), stores=stores),
    )


def _call(function: Callable[..., Any], ctx: StepContext, cfg: Mapping[str, Any]) -> Any:
    """Call a service function with its ctx; an async one on an event loop of its own."""
    if not is_async(function):
        try:
            return _settle(function(ctx, dict(cfg)))
        finally:
            release(ctx)

    async def run() -> Any:
        try:
            return await function(ctx, dict(cfg))
        finally:
            await close_async(ctx)

    return run_to_end(run())


def verify_credentials(
    component: Component,
    cfg: Mapping[str, Any],
    on_keys: OnKeys,
    *,
    stores: CredentialStores = NO_STORES,
) -> dict[str, Any]:
    """``{"verified": bool, "reason"?: str}``; raises when the check itself failed.

    Raises:
        ComponentError: verifyCredentials.py is missing, fails to load or has no ``verify``.
        Exception: whatever ``verify`` raised (a failure to check, not a verdict).
    """
    where = str(component.root / VERIFY_FILE)
    if not (component.root / VERIFY_FILE).is_file():
        raise ComponentError([f"{where}: missing; it must define verify(ctx, credentials)"])
    module = load_module(component.root, VERIFY_FILE, where)
    verify = getattr(module, "verify", None)
    if not callable(verify):
        raise ComponentError([f"{where}: has no function verify(ctx, credentials)"])
    ctx = service_context(component, cfg, on_keys, stores=stores, asynchronous=is_async(verify))
    return _verdict(_call(verify, ctx, cfg))


def _verdict(result: Any) -> dict[str, Any]:
    if isinstance(result, bool):
        return {"verified": result}
    if isinstance(result, Mapping) and isinstance(result.get("verified"), bool):
        return dict(result)
    raise InvalidInput(
        "verify() must return True, False or {'verified': bool, 'reason': str}, "
        f"not {type(result).__name__}"
    )


def select_model(
    component: Component,
    step_name: str,
    method: str,
    cfg: Mapping[str, Any],
    on_keys: OnKeys,
    *,
    stores: CredentialStores = NO_STORES,
) -> Any:
    """The options of a dynamic select: ``{value: label}``."""
    return _call_step_function(component, step_name, method, cfg, on_keys, stores=stores)


def get_meta_model(
    component: Component,
    step_name: str,
    cfg: Mapping[str, Any],
    on_keys: OnKeys,
    *,
    stores: CredentialStores = NO_STORES,
) -> Any:
    """A step's dynamic metadata: ``{"in": schema, "out": schema}``."""
    return _call_step_function(component, step_name, "getMetaModel", cfg, on_keys, stores=stores)


def _call_step_function(
    component: Component,
    step_name: str,
    name: str,
    cfg: Mapping[str, Any],
    on_keys: OnKeys,
    *,
    stores: CredentialStores,
) -> Any:
    step = load_step(component, step_name)
    function = step.function(name)
    if function is None:
        raise ComponentError(
            [f"{step.spec.main!r} (step {step_name!r}) has no function {name}(ctx, cfg)"]
        )
    ctx = service_context(component, cfg, on_keys, stores=stores, asynchronous=is_async(function))
    return _call(function, ctx, cfg)


def _settle(result: Any) -> Any:
    return run_to_end(result) if is_awaited(result) else result

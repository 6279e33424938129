"""Who is calling: every event handler of every page is declared with the roles that may call it.

Gradio's own auth knows users but not roles, and any logged-in user can call any event handler
directly over the API, so the check lives on each handler: `@allow(accounts, ...roles)` takes the
caller from the request's session cookie (never from an argument the browser sends) and passes
it in as the handler's first argument (and the request itself, to a handler that names a
`request` parameter). `check_every_handler` refuses to serve a page with an
event handler that was not declared this way.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
import typing
from typing import Callable

import gradio as gr

from tutor.accounts import AccountService
from tutor.errors import AccessDenied, InvalidInput, TutorError

log = logging.getLogger(__name__)

SESSION_COOKIE = "tutor_session"
ROLES_ATTRIBUTE = "__tutor_roles__"
UNEXPECTED = "Something went wrong on our side; nothing was lost. Please try again."


def allow(accounts: AccountService, *roles: str, api_only: bool = False) -> Callable:
    """Declare a handler callable by `roles`; it receives the caller (a User) first.

    Bad input (InvalidInput) is said in a notice that goes away by itself, and nothing on the
    page changes (an error would leave a red "Error" over every output until the next success);
    for an `api_only` function (gr.api: no page shows its result) it fails the call instead.
    A refused caller, a missing conversation and any other TutorError become an error the browser
    shows (the call fails, nothing changes); anything else is logged and the browser gets a
    generic message.
    """
    def decorate(handler: Callable) -> Callable:
        signature = inspect.signature(handler)
        wants_request = "request" in signature.parameters
        # the caller is not an input, nor is the request
        shown = [p for p in list(signature.parameters.values())[1:] if p.name != "request"]
        request_parameter = inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                              annotation=gr.Request)

        def caller(request: gr.Request):
            token = request.cookies.get(SESSION_COOKIE) if request is not None else None
            return accounts.require(accounts.session_user(token), *roles)

        if inspect.isgeneratorfunction(handler):
            @functools.wraps(handler)
            def wrapper(*args):
                *inputs, request = args
                with _reported():
                    user = caller(request)
                    try:
                        yield from handler(user, *inputs, **({"request": request} if wants_request else {}))
                    except InvalidInput as error:
                        yield _not_accepted(error, api_only)
        else:
            @functools.wraps(handler)
            def wrapper(*args):
                *inputs, request = args
                with _reported():
                    user = caller(request)
                    try:
                        return handler(user, *inputs, **({"request": request} if wants_request else {}))
                    except InvalidInput as error:
                        return _not_accepted(error, api_only)

        # Gradio reads the signature and the type hints to tell inputs from what it fills in
        # (gr.Request, gr.LikeData): it must see the wrapper's, resolved in the handler's module.
        hints = typing.get_type_hints(handler)
        wrapper.__signature__ = signature.replace(parameters=[
            parameter.replace(annotation=hints.get(parameter.name, parameter.annotation))
            for parameter in shown] + [request_parameter])
        wrapper.__annotations__ = {name: hint for name, hint in hints.items()
                                   if name in wrapper.__signature__.parameters} | {"request": gr.Request}
        del wrapper.__wrapped__
        setattr(wrapper, ROLES_ATTRIBUTE, roles)
        return wrapper
    return decorate


def _not_accepted(error: InvalidInput, api_only: bool):
    """Say why the input was not accepted; every output stays as it was (an API call fails)."""
    if api_only:
        raise gr.Error(str(error), title="Not accepted") from None
    gr.Warning(str(error), title="Not accepted")
    return gr.skip()


class _reported:
    """TutorError → gr.Error with its message; a bug → a generic gr.Error, details in the log."""

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if error is None or isinstance(error, (gr.Error, GeneratorExit)):
            return False
        if isinstance(error, AccessDenied):
            raise gr.Error(str(error), title="Not allowed") from None
        if isinstance(error, TutorError):
            raise gr.Error(str(error)) from None
        log.error("page handler failed", exc_info=(kind, error, traceback))
        raise gr.Error(UNEXPECTED) from None


def form_token(session_token: str | None) -> str:
    """The CSRF token of a logged-in user's forms (password, log out): derived from the session's
    secret cookie, so a page on another site can neither read nor guess it."""
    return hashlib.sha256(b"form:" + (session_token or "").encode()).hexdigest()[:32]


def handler_roles(fn: Callable | None) -> tuple[str, ...] | None:
    return getattr(fn, ROLES_ATTRIBUTE, None)


def check_every_handler(page: gr.Blocks) -> None:
    """Refuse a page with an event handler that does not check its caller."""
    for block_function in page.fns.values():
        if block_function.fn is not None and handler_roles(block_function.fn) is None:
            raise RuntimeError(f"event handler {block_function.name!r} does not check its caller; "
                               "declare it with @allow(accounts, ...roles)")

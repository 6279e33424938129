"""Errors the product reports to users; anything else is a bug."""


class TutorError(Exception):
    """Base class: the message is safe to show to a user."""


class InvalidInput(TutorError):
    """Input that cannot be accepted as it is (empty, too long, unreadable)."""


class NotFound(TutorError):
    """A problem, conversation or message that does not exist (or is not yours)."""


class ModelError(TutorError):
    """The model backend failed or could not be provisioned."""


class AccessDenied(TutorError):
    """Not logged in, logged out, or not allowed to do this."""


class LoginRefused(TutorError):
    """Wrong name or password, a throttled or disabled account."""


class LoginThrottled(LoginRefused):
    """Too many failed logins for this name or from this address."""

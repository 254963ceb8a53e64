"""What the sign-in services need, and the closed set of answers they give.

The sso floor's vocabulary: :mod:`idp.sso.signin` and :mod:`idp.sso.consent` return one
of these frozen values and never touch HTTP; the handlers in ``idp.http`` (authorize,
login, consent) render each kind as a page, a redirect and a session cookie. Every
message here is for the person at the browser; every redirect location is a complete
authorization response (RFC 6749 section 4.1.2, RFC 9207 section 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from idp.keyring.ring import KeyRingService
from idp.oauth.authorization import AuthorizationRequest
from idp.oauth.client_keys import ClientKeySets
from idp.oauth.logout import LogoutRequest
from idp.sso.passwords import PasswordService
from idp.sso.sessions import NewSession, SessionServices
from idp.store.security_events import SecurityEventSink


class SignInServices(SessionServices, Protocol):
    """The services a sign-in needs beyond sessions: password checks, the key ring and
    where its security events go."""

    @property
    def passwords(self) -> PasswordService: ...

    @property
    def events(self) -> SecurityEventSink: ...

    @property
    def keys(self) -> KeyRingService: ...

    @property
    def client_keys(self) -> ClientKeySets:
        """The clients' registered public keys (request objects, RFC 9101)."""


@dataclass(frozen=True, slots=True)
class ShowError:
    """Tell the person what went wrong on a page of ours; nothing goes to the client."""

    message: str
    """Plain words for the person at the browser: what happened."""
    error_code: str | None = None
    """The technical code (an OAuth error such as ``invalid_request``), shown small."""
    detail: str | None = None
    """The technical reason, for whoever the person asks for help; shown small, in English."""
    advice: str | None = None
    """What the person can do; None: go back to the application and try again."""


@dataclass(frozen=True, slots=True)
class ShowLoginForm:
    """Ask for a username and password (again) to answer ``request`` from ``client_name``."""

    client_name: str
    request: AuthorizationRequest
    username: str | None
    """The name the field shows: the one typed, or the request's login_hint at first."""
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Throttled:
    """Too many failed sign-ins: the form again, with the reason, and nothing checked.

    ``retry_after`` is the whole seconds (at least 1) until every counter allows another
    attempt.
    """

    form: ShowLoginForm
    retry_after: int


@dataclass(frozen=True, slots=True)
class ConsentNeeded:
    """Ask ``username`` whether ``client_name`` may have the request's scopes.

    ``sid`` names the session the answer must come back in; ``new_session`` is the one
    this sign-in started, whose cookie goes with the page.
    """

    client_name: str
    request: AuthorizationRequest
    sid: str
    username: str
    new_session: NewSession | None = None


@dataclass(frozen=True, slots=True)
class RedirectWithCode:
    """Send the browser to the client with a fresh authorization code."""

    location: str
    """The redirect URI with code, state and iss (RFC 6749 4.1.2, RFC 9207 section 2)."""
    new_session: NewSession | None = None


@dataclass(frozen=True, slots=True)
class RedirectWithError:
    """Send the browser to the client with an error response."""

    location: str
    """The redirect URI with error, error_description, state and iss (RFC 6749 4.1.2.1)."""
    new_session: NewSession | None = None


@dataclass(frozen=True, slots=True)
class PendingSecondFactor:
    """A sign-in waiting for its second factor: the request, whose password was right, and,
    for a step-up of a live session, that session's ``sid`` (None: a new session follows)."""

    request: AuthorizationRequest
    user_id: str
    sid: str | None = None


@dataclass(frozen=True, slots=True)
class SecondFactorNeeded:
    """Ask for a TOTP code or a recovery code (when ``code``) or a passkey (when ``passkey``)
    to finish ``pending`` (the handler keeps it sealed and bound to the browser);
    ``retry_after`` (seconds) when throttled."""

    client_name: str
    pending: PendingSecondFactor
    error: str | None = None
    retry_after: int = 0
    code: bool = True
    """The user has an authenticator app (and recovery codes)."""
    passkey: bool = False
    """The user has a passkey."""


@dataclass(frozen=True, slots=True)
class EnrolmentNeeded:
    """A second factor is required but the user has none: say so, issue nothing. The session
    (password only) lets the person set one up on the account pages."""

    client_name: str
    new_session: NewSession | None = None


SignedInAnswer = ConsentNeeded | RedirectWithCode | RedirectWithError
FactorAnswer = SecondFactorNeeded | EnrolmentNeeded
AuthorizeOutcome = ShowError | ShowLoginForm | FactorAnswer | SignedInAnswer
SignInOutcome = ShowError | ShowLoginForm | Throttled | FactorAnswer | SignedInAnswer
ConsentOutcome = ShowError | RedirectWithCode | RedirectWithError


# -- logout (OpenID Connect RP-Initiated Logout 1.0) ----------------------------------------


@dataclass(frozen=True, slots=True)
class SignedOut:
    """No session is left: leave for the request's post-logout URI, or say so on our page.

    The request's post_logout_redirect_uri gets its state back (section 3); without one
    the browser stays with us.
    """

    request: LogoutRequest


@dataclass(frozen=True, slots=True)
class ConfirmLogout:
    """Ask the signed-in user to confirm before the session ends (section 2)."""

    request: LogoutRequest
    client_name: str | None
    """The client that asked, if the request names one."""


LogoutOutcome = ShowError | SignedOut | ConfirmLogout

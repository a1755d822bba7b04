import base64
import binascii
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from isometric.client import Client, Pace
from isometric.errors import AuthenticationFailed
from portal import crypto, metrics

SANDBOX_URL = "https://api.sandbox.isometric.com/mrv/v0"
PRODUCTION_URL = "https://api.isometric.com/mrv/v0"
MASK = "••••"
EXPIRY_WARNING = timedelta(days=30)


class UnreadableCredentials(AuthenticationFailed):
    """No key of ENCRYPTION_KEYS opens the account's stored credentials: as unusable as ones
    Isometric refuses, and said the same way wherever they are used."""

    def __init__(self) -> None:
        super().__init__(
            "the stored credentials cannot be decrypted with the current ENCRYPTION_KEYS: "
            "an admin needs to enter the client secret and access token again"
        )


class Environment(models.TextChoices):
    SANDBOX = "sandbox", "Sandbox"
    PRODUCTION = "production", "Production"
    CUSTOM = "custom", "Custom base URL"


class ConnectionStatus(models.TextChoices):
    UNTESTED = "untested", "Not tested yet"
    OK = "ok", "Connected"
    REJECTED = "rejected", "Credentials rejected"
    UNREACHABLE = "unreachable", "Unreachable"


class IsometricAccount(models.Model):
    """One Isometric organisation the portal pushes batches to, with the credentials it uses.

    The client secret and the access token are stored encrypted (portal.crypto) and are written
    through set_credentials(); nothing renders them back.
    """

    name = models.CharField(max_length=100, unique=True)
    environment = models.CharField(
        max_length=20, choices=Environment.choices, default=Environment.SANDBOX
    )
    base_url = models.URLField(
        "custom base URL", blank=True, help_text="Only for a custom environment."
    )
    encrypted_client_secret = models.TextField(editable=False)
    encrypted_access_token = models.TextField(editable=False)
    # When each secret was last replaced: the account's history records these, never the secrets.
    client_secret_changed_at = models.DateTimeField(null=True, blank=True, editable=False)
    access_token_changed_at = models.DateTimeField(null=True, blank=True, editable=False)
    token_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    organisation_id = models.CharField(max_length=40, blank=True, editable=False)
    organisation_name = models.CharField(max_length=200, blank=True, editable=False)
    connection_status = models.CharField(
        max_length=20,
        choices=ConnectionStatus.choices,
        default=ConnectionStatus.UNTESTED,
        editable=False,
    )
    connection_message = models.CharField(max_length=300, blank=True, editable=False)
    checked_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The next pull of Isometric's batches falls due then (now, when an operator asks for one).
    pull_due_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_pulled_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_pull_summary = models.CharField(max_length=300, blank=True, editable=False)
    request_rate_limit = models.FloatField(
        "Requests a second",
        null=True,
        blank=True,
        validators=[MinValueValidator(0.01)],
        help_text="The most the sync workers send to Isometric for this account, all of them "
        "together: its rate limit. Blank: the ISOMETRIC_RATE_LIMIT setting.",
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        related_name="isometric_accounts",
        blank=True,
        help_text="The operators who record and see this account's batches.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "Isometric account"
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(environment=Environment.CUSTOM) | ~models.Q(base_url=""),
                name="account_custom_has_base_url",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def api_url(self) -> str:
        if self.environment == Environment.CUSTOM:
            return self.base_url
        return SANDBOX_URL if self.environment == Environment.SANDBOX else PRODUCTION_URL

    @sensitive_variables()
    def set_credentials(self, *, client_secret: str = "", access_token: str = "") -> None:
        """Store whichever is given, encrypted, and when it was; an empty one keeps what is
        stored. Changed credentials have not been tested yet."""
        if client_secret:
            self.encrypted_client_secret = crypto.encrypt(client_secret)
            self.client_secret_changed_at = timezone.now()
        if access_token:
            self.encrypted_access_token = crypto.encrypt(access_token)
            self.token_expires_at = token_expiry(access_token)
            self.access_token_changed_at = timezone.now()
        if client_secret or access_token:
            self.connection_status = ConnectionStatus.UNTESTED
            self.connection_message = ""

    @property
    def client_secret_hint(self) -> str:
        return _hint(self.encrypted_client_secret)

    @property
    def access_token_hint(self) -> str:
        return _hint(self.encrypted_access_token)

    @property
    def attention(self) -> str:
        """What an admin must do something about, in words; "" when nothing."""
        if self.connection_status == ConnectionStatus.REJECTED:
            return "Isometric refused its credentials"
        if self.token_expires_at is None:
            return ""
        when = f"{timezone.localtime(self.token_expires_at):%-d %b %Y}"
        if self.token_expires_at <= timezone.now():
            return f"its access token expired on {when}"
        if self.token_expires_at <= timezone.now() + EXPIRY_WARNING:
            return f"its access token expires on {when}"
        return ""

    @property
    def rate_limit(self) -> float | None:
        """Requests a second its workers may send (None: as many as they like)."""
        return self.request_rate_limit or settings.ISOMETRIC_RATE_LIMIT or None

    @sensitive_variables()
    def client(self, pace: Pace | None = None) -> Client:
        """A client with the account's credentials; UnreadableCredentials when no key opens them."""
        try:
            client_secret = crypto.decrypt(self.encrypted_client_secret)
            access_token = crypto.decrypt(self.encrypted_access_token)
        except crypto.InvalidToken:
            raise UnreadableCredentials from None
        return Client(
            self.api_url,
            client_secret,
            access_token,
            timeout=settings.ISOMETRIC_TIMEOUT,
            deadline=settings.ISOMETRIC_DEADLINE,
            max_response_bytes=settings.ISOMETRIC_MAX_RESPONSE_BYTES,
            pace=pace,
            observe=metrics.observe_isometric,
        )


class RequestBudget(models.Model):
    """The pace of the sync workers' requests to Isometric for one account, which every worker
    thread, in every process on every machine, takes its turns from (portal/pace.py)."""

    account = models.OneToOneField(
        IsometricAccount, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    # Seconds between two requests now: at least 1 / the account's rate limit, longer after a 429
    # until the requests that follow bring it down again; 0 for an account with no limit.
    interval = models.FloatField(default=0)
    next_at = models.DateTimeField()  # the earliest the next request may go
    # The last 429 that slowed it: the others of a burst sent before then do not slow it again.
    slowed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.account_id}: a request every {self.interval:.3f} s"


@sensitive_variables()
def _hint(encrypted: str) -> str:
    """Which secret is stored, without showing it: its last four characters."""
    if not encrypted:
        return "none stored"
    try:
        secret = crypto.decrypt(encrypted)
    except crypto.InvalidToken:
        return "stored, but no encryption key opens it"
    return MASK + secret[-4:] if len(secret) >= 12 else MASK


@sensitive_variables()
def token_expiry(token: str) -> datetime | None:
    """The `exp` claim of a JWT, unverified; None when the token is not a JWT or has none."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(payload)
        return datetime.fromtimestamp(float(claims["exp"]), tz=UTC)
    except (binascii.Error, ValueError, TypeError, KeyError, OverflowError, OSError):
        return None


class Clients:
    """Isometric clients by account, one each, kept for its connections and replaced when the
    account's credentials change.

    Safe to share between threads, so the web process keeps a single instance (batches.remote)
    and every request thread reuses the account's connections: a lock guards the registry, and
    a client's requests.Session takes a connection from its urllib3 pool for each request, and
    that pool is thread-safe. A worker may as well keep one of its own.
    """

    def __init__(self, pace: Callable[["IsometricAccount"], Pace] | None = None) -> None:
        """`pace`: each account's clients' pace (the workers' clients take turns from the
        account's RequestBudget; the pages' do not: an operator does not wait in a queue)."""
        self._lock = threading.Lock()
        self._clients: dict[int, tuple[datetime, Client]] = {}
        self._pace = pace

    def get(self, account: IsometricAccount) -> Client:
        with self._lock:
            held = self._clients.get(account.pk)
            if held is not None and held[0] == account.updated_at:
                return held[1]
            client = account.client(self._pace(account) if self._pace else None)
            self._clients[account.pk] = (account.updated_at, client)
        if held is not None:
            # A request still using it finishes: closing only drops the idle connections.
            held[1].close()
        return client

    def close(self) -> None:
        with self._lock:
            held, self._clients = list(self._clients.values()), {}
        for _, client in held:
            client.close()


class UserPreferences(models.Model):
    """How the portal shows itself to one user: the time zone its times are shown and read in
    ("" for the portal's own, settings.TIME_ZONE)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preferences"
    )
    time_zone = models.CharField(max_length=64, blank=True)

    class Meta:
        verbose_name_plural = "user preferences"

    def __str__(self) -> str:
        return f"{self.user}'s preferences"

"""Error reports that never show the Isometric credentials, with DEBUG on too (`make run`)."""

from collections.abc import ItemsView
from types import FrameType
from typing import Any

from django.http import HttpRequest
from django.views.debug import SafeExceptionReporterFilter

# Modules whose functions hold a client secret or an access token in plain text, in their
# arguments or locals: the Isometric client, the HTTP stack under it, and the encryption.
CREDENTIAL_MODULES = (
    "isometric",
    "requests",
    "urllib3",
    "http.client",
    "ssl",
    "socket",
    "portal.crypto",
    "cryptography",
)


class CredentialsFilter(SafeExceptionReporterFilter):
    """Django's filter (sensitive_variables, sensitive_post_parameters, settings), active with
    DEBUG on as well, which also hides every local variable of CREDENTIAL_MODULES' frames and,
    in any frame, an exception raised through them."""

    def is_active(self, request: HttpRequest | None) -> bool:
        # Django's is off with DEBUG on, but the debug page shows the same locals as a report.
        return True

    def get_traceback_frame_variables(
        self, request: HttpRequest | None, tb_frame: FrameType
    ) -> ItemsView[str, Any]:
        if holds_credentials(tb_frame):
            return {name: self.cleansed_substitute for name in tb_frame.f_locals}.items()
        return super().get_traceback_frame_variables(request, tb_frame)

    def cleanse_special_types(self, request: HttpRequest | None, value: Any) -> Any:
        # Its arguments may be a credential: UnicodeEncodeError carries the whole header.
        if isinstance(value, BaseException) and raised_where_credentials_are(value):
            return self.cleansed_substitute
        return super().cleanse_special_types(request, value)


def raised_where_credentials_are(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        if holds_credentials(tb.tb_frame):
            return True
        tb = tb.tb_next
    return False


def holds_credentials(frame: FrameType) -> bool:
    module = frame.f_globals.get("__name__", "")
    return any(module == name or module.startswith(f"{name}.") for name in CREDENTIAL_MODULES)

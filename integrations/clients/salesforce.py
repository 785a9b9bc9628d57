"""simple-salesforce with Salesforce's limits kept: the daily API usage it reports in every
answer (Sforce-Limit-Info) stops a run before the org's quota runs out, and 5xx answers and
dropped connections are retried with backoff. REQUEST_LIMIT_EXCEEDED is not retried: the
daily quota does not come back within a run."""

import time
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceAuthenticationFailed, SalesforceError

from integrations.clients.limits import RemoteError, with_retries

# A run stops once the org has used this share of its daily API requests: the rest is left
# to the org's people and other integrations.
USAGE_CEILING = 0.9


class _RouteTo(HTTPAdapter):
    """Sends every https:// request to one base URL (SALESFORCE_API_URL: tests' fake), since
    simple-salesforce builds https://<instance> URLs itself."""

    def __init__(self, base: str):
        super().__init__()
        self.base = base.rstrip("/")

    def send(self, request, **kwargs):
        parts = urlsplit(request.url)
        request.url = self.base + parts.path + (f"?{parts.query}" if parts.query else "")
        return super().send(request, **kwargs)


def _session() -> requests.Session:
    session = requests.Session()
    if settings.SALESFORCE_API_URL:
        session.mount("https://", _RouteTo(settings.SALESFORCE_API_URL))
    return session


class SalesforceClient:
    def __init__(self, *, auth_flow: str, domain: str, secrets: dict, sleep=time.sleep):
        self.sleep = sleep
        self.calls = 0
        kwargs = {
            "consumer_key": secrets.get("consumer_key"),
            "consumer_secret": secrets.get("consumer_secret"),
            "domain": domain or "login",
            "session": _session(),
        }
        if auth_flow == "password":
            # The OAuth username-password flow takes the security token after the password.
            kwargs["username"] = secrets.get("username")
            kwargs["password"] = (secrets.get("password") or "") + (
                secrets.get("security_token") or ""
            )
        self.calls += 1  # the token request
        try:
            self.sf = Salesforce(**kwargs)
        except SalesforceAuthenticationFailed as error:
            raise RemoteError(
                f"Salesforce refused the sign-in: {error.code}: {error.auth_message}"
            ) from error
        self.sf.session.request = _with_timeout(self.sf.session.request)

    def _transient(self, error: Exception) -> float | None:
        if isinstance(error, requests.ConnectionError | requests.Timeout):
            return 0.0
        status = getattr(error, "status", None)
        if status is not None and status >= 500:
            return 0.0
        return None

    def _call(self, call):
        def count():
            self.calls += 1

        try:
            result = with_retries(call, is_transient=self._transient, on_attempt=count,
                                  sleep=self.sleep)  # fmt: skip
        except SalesforceError as error:
            content = error.content if isinstance(error.content, list) else []
            message = "; ".join(f"{e.get('errorCode')}: {e.get('message')}" for e in content)
            raise RemoteError(message or str(error), status=error.status) from error
        except requests.RequestException as error:
            raise RemoteError(f"Salesforce unreachable: {type(error).__name__}") from error
        usage = (self.sf.api_usage or {}).get("api-usage")
        if usage and usage.total and usage.used >= usage.total * USAGE_CEILING:
            raise RemoteError(
                f"Salesforce API usage is at {usage.used} of {usage.total} requests today; "
                "the sync stops here and resumes when the org has room."
            )
        return result

    def query(self, soql: str, *, include_deleted: bool = False) -> dict:
        """One batch of a SOQL query (queryAll with `include_deleted`: the recycle bin too)."""
        return self._call(lambda: self.sf.query(soql, include_deleted=include_deleted))

    def query_every(self, soql: str) -> list[dict]:
        """Every record a SOQL query finds, following its batches (queryMore)."""
        answer = self.query(soql)
        records = list(answer.get("records", []))
        while not answer.get("done", True) and answer.get("nextRecordsUrl"):
            answer = self._call(
                lambda url=answer["nextRecordsUrl"]: self.sf.query_more(url, identifier_is_url=True)
            )
            records += answer.get("records", [])
        return records

    def deleted(self, sobject: str, start, end) -> dict:
        return self._call(lambda: getattr(self.sf, sobject).deleted(start, end))

    def describe(self, sobject: str) -> dict:
        return self._call(lambda: getattr(self.sf, sobject).describe())

    def upsert_collection(self, sobject: str, external_id: str, records: list[dict]) -> list:
        """sObject Collections upsert: up to 200 records of one type, matched on an External
        ID field, each answered with its id and whether it was `created`."""
        body = {"allOrNone": False, "records": records}
        path = f"composite/sobjects/{sobject}/{external_id}"
        return self._call(lambda: self.sf.restful(path, method="PATCH", json=body))

    def collection(self, method: str, records: list[dict] | None = None, ids=None) -> list:
        if method == "DELETE":
            params = {"ids": ",".join(ids), "allOrNone": "false"}
            return self._call(lambda: self.sf.restful("composite/sobjects", method=method,
                                                      params=params))  # fmt: skip
        body = {"allOrNone": False, "records": records}
        return self._call(lambda: self.sf.restful("composite/sobjects", method=method, json=body))


def _with_timeout(request):
    def timed(*args, **kwargs):
        kwargs.setdefault("timeout", settings.SYNC_TIMEOUT_SECONDS)
        return request(*args, **kwargs)

    return timed

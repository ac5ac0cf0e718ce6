"""Mintgate, the operator's dashboard: server-rendered Jinja2 pages with htmx fragments, served
by the API front under /ui. The read-only pages work without JavaScript; htmx (vendored, as the
CSS) only refreshes the payment log.

Sessions: after the password is checked (bcrypt, as the API), a signed cookie (HMAC-SHA256 over
`expiry.csrf`, HttpOnly, SameSite=Strict, Path=/ui) holds the session and its CSRF token; every
form carries the token. The pages call the same handlers as the admin API (ADMIN_ROUTES), so the
dashboard can do nothing the API cannot.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from pathlib import Path
from typing import Any

import falcon
import segno
from jinja2 import Environment, FileSystemLoader, select_autoescape

from gwcore.errors import (
    DepositPending,
    GatewayError,
    InvalidInput,
    RateLimited,
    Unauthorized,
)
from gwcore.values import amount_text

from . import formatting as fmt
from .charts import volume_chart
from .clients import client_of
from .dashboard_connect import ConnectPages
from .dashboard_payments import PaymentPages
from .sessions import LOGIN_COOKIE, SESSION_COOKIE, SESSION_S, Sessions

HERE = Path(__file__).resolve().parent
log = logging.getLogger(__name__)
# pages may load only our own files; nobody may frame them (clickjacking); forms post only here
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self';"
    " script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


ERROR_TITLES = {
    403: "Refused",
    404: "Not found",
    409: "Not now",
    503: "A part of the gateway does not answer",
    504: "A part of the gateway took too long",
}


class NoSession(Exception):
    """No valid session: a page redirects to the login, an htmx fragment asks for a reload."""


class Dashboard:
    public = True  # the API's Bearer check does not apply: the dashboard has its own session

    def __init__(
        self, gw: Any, routes: dict, sessions: Sessions, secure_cookies: bool = False
    ) -> None:
        self.gw, self.routes, self.sessions = gw, routes, sessions
        self.secure_cookies = secure_cookies
        self.env = Environment(
            loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"])
        )
        self.env.filters["ts"] = fmt.ts
        self.env.filters["until"] = fmt.until
        self.env.filters["scid"] = fmt.scid
        self.env.filters["health"] = fmt.health
        self.env.filters["amount"] = amount_text  # msat -> "1,234.567 sat", in every page
        self.env.filters["sats"] = lambda sat: f"{sat:,} sat"

    # --- helpers --------------------------------------------------------------------------------
    def _render(self, resp: falcon.Response, name: str, **ctx: Any) -> None:
        resp.content_type = falcon.MEDIA_HTML
        resp.text = self.env.get_template(name).render(**ctx)

    @staticmethod
    def _cookie(req: falcon.Request, name: str) -> str | None:
        values = req.get_cookie_values(name)
        return values[0] if values else None

    def _session(self, req: falcon.Request) -> str:
        csrf = self.sessions.verify(self._cookie(req, SESSION_COOKIE))
        if csrf is None:
            raise NoSession()
        return csrf

    def _set_cookie(
        self, req: falcon.Request, resp: falcon.Response, name: str, value: str, max_age: int
    ) -> None:
        resp.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/ui",
            # Secure whenever the operator reaches us over HTTPS (directly or through a proxy
            # that says so); plain HTTP on loopback must keep working
            secure=self.secure_cookies or req.forwarded_scheme == "https",
            http_only=True,
            same_site="Strict",
        )

    def render_error(
        self, req: falcon.Request, resp: falcon.Response, status: int, message: str
    ) -> None:
        """Errors under /ui as pages (or, for htmx, as a fragment it shows), never as JSON."""
        resp.status = falcon.code_to_http_status(status)
        if req.get_header("HX-Request") == "true":
            self._render(resp, "error_fragment.html", message=message)
        else:
            title = ERROR_TITLES.get(status, "Refused" if status < 500 else "Something went wrong")
            csrf = self.sessions.verify(self._cookie(req, SESSION_COOKIE))  # keep the menu
            self._render(resp, "message.html", title=title, message=message, csrf=csrf)

    def _form(self, req: falcon.Request, csrf: str) -> dict:
        form = (
            {k: v for k, v in (req.get_media() or {}).items()}
            if req.content_type and "form" in req.content_type
            else {}
        )
        if not hmac.compare_digest(str(form.get("csrf", "")), csrf):
            raise falcon.HTTPForbidden(title="CSRF token missing or wrong")
        return form

    def _password_error(self, req: falcon.Request, resp: falcon.Response, password: str) -> str:
        """ "" if `password` is right; else the message to show, with the status set."""
        try:
            if self.sessions.check_password(password, client_of(req)):
                return ""
        except RateLimited as exc:
            resp.status = falcon.HTTP_429
            resp.set_header("Retry-After", str(exc.retry_after_s))
            return exc.message.capitalize() + "."
        except Unauthorized as exc:  # longer than bcrypt reads
            resp.status = falcon.HTTP_401
            return exc.message.capitalize() + "."
        resp.status = falcon.HTTP_401
        return "Wrong password."

    def _call(self, path: str, body: dict, rid: str) -> Any:
        return self.routes[path](self.gw, body, rid)

    def _try(self, path: str, body: dict, rid: str) -> tuple[Any, str | None]:
        """(reply, None), or (None, the error's message) when the part asked is down."""
        try:
            return self._call(path, body, rid), None
        except GatewayError as exc:
            return None, exc.message

    # --- login ------------------------------------------------------------------------------------
    def _login_page(self, req: falcon.Request, resp: falcon.Response, error: str | None) -> None:
        token = self._cookie(req, LOGIN_COOKIE) or self.sessions.login_token()
        self._set_cookie(req, resp, LOGIN_COOKIE, token, 3600)
        self._render(resp, "login.html", error=error, login_token=token)

    def on_get_login(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._login_page(req, resp, None)

    def on_post_login(self, req: falcon.Request, resp: falcon.Response) -> None:
        form = req.get_media() if req.content_type and "form" in req.content_type else {}
        form = form if isinstance(form, dict) else {}
        if not self.sessions.login_token_ok(
            self._cookie(req, LOGIN_COOKIE), form.get("login_token", "")
        ):  # a form posted from another site, or a stale page: show a fresh one
            resp.status = falcon.HTTP_403
            self._login_page(req, resp, "The login form had expired: enter the password again.")
            return
        error = self._password_error(req, resp, str(form.get("password", "")))
        if error:
            self._login_page(req, resp, error)
            return
        token, _ = self.sessions.issue()
        self._set_cookie(req, resp, SESSION_COOKIE, token, SESSION_S)
        resp.unset_cookie(LOGIN_COOKIE, path="/ui")
        raise falcon.HTTPSeeOther("/ui/")

    def on_post_logout(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._form(req, self._session(req))
        self.sessions.revoke(self._cookie(req, SESSION_COOKIE))  # in every worker, not only here
        resp.unset_cookie(SESSION_COOKIE, path="/ui")
        raise falcon.HTTPSeeOther("/ui/login")

    # --- pages ------------------------------------------------------------------------------------
    def on_get_overview(self, req: falcon.Request, resp: falcon.Response) -> None:
        csrf = self._session(req)
        rid = req.context.request_id
        info = self._call("/info", {}, rid)
        summary = self._call("/payment_summary", {}, rid)
        lightning, ln_error = self._try("/lightning", {}, rid)
        known = [
            f["balance_msat"] for f in info["federations"] if f.get("balance_msat") is not None
        ]
        self._render(
            resp,
            "overview.html",
            info=info,
            summary=summary,
            chart=volume_chart(summary["series"], summary["bucket_s"]),
            lightning=lightning,
            ln_error=ln_error,
            total_msat=sum(known),
            unanswered=len(info["federations"]) - len(known),
            csrf=csrf,
            now=time.time(),
            message=None,
        )

    def on_post_deposit_status(self, req: falcon.Request, resp: falcon.Response, fed: str) -> None:
        """A fragment for htmx polling after a new address: waiting (with the confirmations
        seen so far) or credited. It stops polling once credited or on a definite error."""
        form = self._form(req, self._session(req))
        op = str(form.get("operation_id", ""))
        try:
            result = self._call(
                "/deposit",
                {"federation_id": fed, "operation_id": op, "timeout_s": 0},
                req.context.request_id,
            )
        except DepositPending as exc:
            self._render(
                resp, "deposit_status.html", fed=fed, op=op, csrf=form["csrf"], waiting=exc.message
            )
            return
        except GatewayError as exc:
            self._render(resp, "deposit_status.html", error=exc.message, waiting=None)
            return
        self._render(resp, "deposit_status.html", result=result, waiting=None)

    def on_get_federation(self, req: falcon.Request, resp: falcon.Response, fed: str) -> None:
        csrf = self._session(req)
        self._federation_page(resp, fed, csrf, req.context.request_id)

    def _federation_page(
        self, resp: falcon.Response, fed: str, csrf: str, rid: str, **shown: Any
    ) -> None:
        info = self._call("/info", {}, rid)
        entry = next((f for f in info["federations"] if f["federation_id"] == fed), None)
        if entry is None:
            raise falcon.HTTPNotFound(title="no such federation")
        ctx = {"deposit": None, "qr": None, "result": None, "error": None, "quote": None, "key": ""}
        ctx |= {"ecash": None, "spend_key": secrets.token_hex(16)}
        ctx.update(shown)
        ctx["leave_confirm"] = shown.get("leave_confirm", False)
        self._render(resp, "federation.html", fed=entry, csrf=csrf, now=time.time(), **ctx)

    def on_post_action(
        self, req: falcon.Request, resp: falcon.Response, fed: str, action: str
    ) -> None:
        csrf = self._session(req)
        form = self._form(req, csrf)
        rid = req.context.request_id
        shown: dict = {}
        fid = {"federation_id": fed}
        try:
            if action == "address":
                deposit = self._call("/address", fid, rid)
                shown["deposit"] = deposit
                shown["qr"] = segno.make(f"bitcoin:{deposit['address']}").svg_inline(scale=4)
            elif action == "claim":
                query: dict = {**fid, "timeout_s": 5}
                if str(form.get("txid", "")).strip():
                    query["txid"] = str(form["txid"]).strip()
                shown["result"] = self._call("/deposit", query, rid)
            elif action == "withdraw":
                raw = str(form.get("amount", "")).strip()
                body = {
                    **fid,
                    "amount": "all" if raw == "all" else int(raw) if fmt.whole(raw) else -1,
                    "address": str(form.get("address", "")).strip(),
                }
                if form.get("confirm") == "yes":  # the second step: send, once per quote
                    key = str(form.get("key", ""))  # a refresh or double click resends it
                    shown["result"] = self._call(
                        "/withdraw", {**body, "idempotency_key": key or None}, rid
                    )
                else:  # the first step: the quote, and a button to confirm it
                    shown["quote"] = self._call("/withdraw", {**body, "preview": True}, rid)
                    shown["key"] = secrets.token_hex(16)
            elif action == "receive-ecash":
                notes = str(form.get("notes", "")).strip()
                if not notes:
                    raise InvalidInput("paste the e-cash notes first")
                shown["ecash"] = self._call("/receive_ecash", {"notes": notes}, rid)
            elif action == "spend-ecash":
                msat = fmt.sat_to_msat(str(form.get("amount", "")))
                if not msat:
                    raise InvalidInput("the amount is in sat, with at most 3 decimals (msat)")
                key = str(form.get("key", "")) or None  # a refresh resends the same request
                shown["ecash"] = self._call(
                    "/spend_ecash", {**fid, "amount_msat": msat, "idempotency_key": key}, rid
                )
            elif action == "fees":
                base, ppm = str(form.get("base_msat", "")), str(form.get("ppm", ""))
                if not (fmt.whole(base) and fmt.whole(ppm)):
                    raise InvalidInput("fees are whole numbers")
                shown["result"] = self._call(
                    "/set_fees",
                    {**fid, "base_msat": int(base), "proportional_millionths": int(ppm)},
                    rid,
                )
            elif action == "leave":
                if form.get("confirm") != "yes":
                    shown["leave_confirm"] = True
                else:
                    self._call("/leave-fed", fid, rid)
                    raise falcon.HTTPSeeOther("/ui/")
            else:
                raise falcon.HTTPNotFound()
        except GatewayError as exc:
            shown["error"] = exc.message
            resp.status = falcon.code_to_http_status(exc.http_status)
        self._federation_page(resp, fed, csrf, rid, **shown)

    # --- secrets: shown only right after the password is entered again -------------------------
    def on_get_secrets(self, req: falcon.Request, resp: falcon.Response) -> None:
        csrf = self._session(req)
        self._render(resp, "secrets.html", csrf=csrf, words=None, error=None)

    def on_post_secrets(self, req: falcon.Request, resp: falcon.Response) -> None:
        csrf = self._session(req)
        form = self._form(req, csrf)
        resp.set_header("Cache-Control", "no-store")
        error = self._password_error(req, resp, str(form.get("password", "")))
        if error:
            self._render(resp, "secrets.html", csrf=csrf, words=None, error=error)
            return
        words = str(self._call("/seed", {}, req.context.request_id)["words"]).split()
        self._render(resp, "secrets.html", csrf=csrf, words=words, error=None)


class DashboardHeaders:
    """Security headers on every /ui response (pages, fragments, static files)."""

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        if req.path.startswith("/ui"):
            for name, value in SECURITY_HEADERS.items():
                resp.set_header(name, value)


def add_dashboard(
    app: falcon.App, gw: Any, routes: dict, sessions: Sessions, secure_cookies: bool = False
) -> Dashboard:
    """Mount Mintgate under /ui; returns it so the app's error handler can render its errors."""
    ui = Dashboard(gw, routes, sessions, secure_cookies)

    def no_session(req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict) -> None:
        if req.get_header("HX-Request") == "true":  # a fragment: have htmx load the login page
            resp.status = falcon.HTTP_401
            resp.set_header("HX-Redirect", "/ui/login")
        else:
            resp.status, resp.location = falcon.HTTP_303, "/ui/login"
        resp.text = ""

    app.add_error_handler(NoSession, no_session)
    app.add_middleware(DashboardHeaders())
    app.add_route("/ui/login", ui, suffix="login")
    app.add_route("/ui/logout", ui, suffix="logout")
    app.add_route("/ui/", ui, suffix="overview")
    connect = ConnectPages(ui)
    app.add_route("/ui/connect", connect, suffix="connect")
    app.add_route("/ui/connect/{fed}", connect, suffix="connect_progress")
    app.add_route("/ui/federations/{fed}", ui, suffix="federation")
    app.add_route("/ui/federations/{fed}/deposit-status", ui, suffix="deposit_status")
    app.add_route("/ui/federations/{fed}/{action}", ui, suffix="action")
    payments = PaymentPages(ui)
    app.add_route("/ui/payments", payments, suffix="payments")
    app.add_route("/ui/payments/rows", payments, suffix="rows")
    app.add_route("/ui/payments/summary", payments, suffix="summary")
    app.add_route("/ui/secrets", ui, suffix="secrets")
    app.add_static_route("/ui/static", str(HERE / "static"))
    return ui

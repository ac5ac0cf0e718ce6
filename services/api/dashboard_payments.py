"""Mintgate's payments pages: the payment log with its filters, refreshed by htmx (`rows`), and
the last 24 h's summary and volume chart (`summary`), over the admin API's /payment_log and
/payment_summary. Sessions, rendering and calls are the dashboard's (dashboard.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import falcon

from gwcore import constants as C
from gwcore.errors import GatewayError, NotFound

from . import formatting as fmt
from .charts import volume_chart

if TYPE_CHECKING:
    from .dashboard import Dashboard


class PaymentPages:
    public = True  # the dashboard's own session, not the API's Bearer check

    def __init__(self, ui: Dashboard) -> None:
        self.ui = ui

    def on_get_payments(self, req: falcon.Request, resp: falcon.Response) -> None:
        csrf = self.ui._session(req)
        rid = req.context.request_id
        federations = self.ui._call("/info", {}, rid)["federations"]
        rows, error = self._rows(req)
        self.ui._render(
            resp,
            "payments.html",
            rows=rows,
            error=error,
            names=fmt.names(federations),
            federations=federations,
            selected={k: req.get_param(k) or "" for k in ("federation_id", "direction", "status")},
            directions=C.PAYMENT_DIRECTIONS,
            csrf=csrf,
            query=req.query_string,
            **self._summary(req),
        )

    def on_get_rows(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.ui._session(req)
        try:
            names = fmt.names(self.ui._call("/info", {}, req.context.request_id)["federations"])
        except GatewayError as exc:  # the router does not answer: said in the table itself
            resp.status = falcon.code_to_http_status(exc.http_status)
            error = f"The payment log could not be read: {exc.message}"
            self.ui._render(resp, "payment_rows.html", rows=[], names={}, error=error)
            return
        rows, error = self._rows(req)
        self.ui._render(resp, "payment_rows.html", rows=rows, names=names, error=error)

    def on_get_summary(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The 24 h summary and chart alone, refreshed by htmx beside the log."""
        self.ui._session(req)
        self.ui._render(resp, "payment_summary.html", query=req.query_string, **self._summary(req))

    def _summary(self, req: falcon.Request) -> dict:
        """{summary, chart} of the last 24 h, for the federation chosen in the filter if any."""
        body: dict = {}
        fed = req.get_param("federation_id")
        if fed and len(fed) == 64:
            body["federation_id"] = fed
        try:
            summary = self.ui._call("/payment_summary", body, req.context.request_id)
        except GatewayError:  # the chosen federation just left: the whole gateway's figures
            summary = self.ui._call("/payment_summary", {}, req.context.request_id)
        return {"summary": summary, "chart": volume_chart(summary["series"], summary["bucket_s"])}

    def _rows(self, req: falcon.Request) -> tuple[list[dict], str | None]:
        """(payments newest first, or [] and why not)."""
        body: dict = {"limit": 100}
        fed = req.get_param("federation_id")
        if fed and len(fed) == 64:
            body["federation_id"] = fed
        if req.get_param("direction") in C.PAYMENT_DIRECTIONS:
            body["kinds"] = [req.get_param("direction")]
        if req.get_param("status") in ("settled", "failed", "pending"):
            body["statuses"] = [req.get_param("status")]
        try:
            log = self.ui._call("/payment_log", body, req.context.request_id)
        except NotFound:  # the federation chosen has just left: nothing of it to show
            return [], None
        except GatewayError as exc:  # said in the table, never shown as "no payments"
            return [], f"The payment log could not be read: {exc.message}"
        missing = log.get("missing_federations") or []
        if missing:
            return log["payments"], (
                f"{len(missing)} federation(s) did not answer: their payments are not listed"
            )
        return log["payments"], None

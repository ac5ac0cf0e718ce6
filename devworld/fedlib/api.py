"""A typed client of one federation's HTTP+JSON API (httpx, synchronous).

Errors come back as `FedApiError(code, message, status)`; status 0 means the federation could not
be reached (retryable), 4xx means the federation refused and changed nothing.
"""

from __future__ import annotations

from typing import Any

import httpx


class FedApiError(Exception):
    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.status = code, message, status

    @property
    def unreachable(self) -> bool:
        return self.status == 0 or self.status >= 500


class FederationApi:
    def __init__(
        self, api_url: str, *, timeout: float = 30.0, http: httpx.Client | None = None
    ) -> None:
        self.url = api_url.rstrip("/")
        self.http = http or httpx.Client(timeout=timeout)

    def _req(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict | None = None,
        timeout: float | None = None,
    ) -> Any:
        try:
            r = self.http.request(
                method,
                self.url + path,
                json=body,
                params=params,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.HTTPError as exc:
            raise FedApiError("unreachable", f"{self.url}: {exc}", 0) from None
        try:
            data = r.json()
        except ValueError:
            raise FedApiError(
                "bad_response", f"HTTP {r.status_code} without JSON", r.status_code
            ) from None
        if r.status_code >= 400:
            raise FedApiError(
                str(data.get("code", "error")), str(data.get("error", "")), r.status_code
            )
        return data

    def config(self) -> dict:
        return self._req("GET", "/v1/config")

    def submit(self, tx: dict) -> dict:
        return self._req("POST", "/v1/transactions", tx)

    def transaction(self, txid: str, wait: float = 0.0) -> dict:
        return self._req(
            "GET", f"/v1/transactions/{txid}", params={"wait": wait}, timeout=wait + 10
        )

    def block_height(self, wait_for: int | None = None, timeout: float = 30.0) -> int:
        params = {} if wait_for is None else {"wait_for": wait_for, "timeout": timeout}
        return int(
            self._req("GET", "/v1/block_height", params=params, timeout=timeout + 10)["height"]
        )

    def contract(self, contract_id: str) -> dict:
        return self._req("GET", f"/v1/ln/contracts/{contract_id}")

    def offer(self, payment_hash: str, wait: float = 0.0) -> dict:
        return self._req(
            "GET", f"/v1/ln/offers/{payment_hash}", params={"wait": wait}, timeout=wait + 10
        )

    def gateways(self) -> list[dict]:
        return self._req("GET", "/v1/ln/gateways")

    def register_gateway(self, registration: dict, signature: str) -> dict:
        return self._req(
            "POST", "/v1/ln/gateways", {"registration": registration, "signature": signature}
        )

    def remove_gateway(self, gateway_key: str, signature: str) -> dict:
        return self._req("POST", f"/v1/ln/gateways/{gateway_key}/remove", {"signature": signature})

    def pegin_address(self, user_key: str) -> str:
        return self._req("POST", "/v1/wallet/peg_in_address", {"user_key": user_key})["address"]

    def deposits(self, address: str) -> list[dict]:
        return self._req("GET", "/v1/wallet/deposits", params={"address": address})

    def pegout_fees(self, address: str, amount_sat: int) -> dict:
        return self._req(
            "GET", "/v1/wallet/peg_out_fees", params={"address": address, "amount_sat": amount_sat}
        )

    def put_backup(self, user_key: str, data_hex: str, signature: str) -> dict:
        return self._req(
            "PUT", "/v1/backup", {"user_key": user_key, "data": data_hex, "signature": signature}
        )

    def get_backup(self, user_key: str) -> dict:
        return self._req("GET", f"/v1/backup/{user_key}")

    def audit(self) -> dict:
        return self._req("GET", "/v1/audit")

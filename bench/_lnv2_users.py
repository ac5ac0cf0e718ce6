"""Federation users who pay BOLT11 invoices through a chosen LNv2 gateway, as fedimint-cli 0.13's
`module lnv2 send <invoice> --gateway URL` and `await-send` do, on fmclient: the benches' load
generator (many users in one process, no process start-up per payment).

One payment, step by step as fedimint-lnv2-client 0.13.0 takes it (sources under
~/.cargo/registry/src/*/):

1. `POST <gateway>/routing_info` with the federation id (a bare hex JSON string): `RoutingInfo`,
   or null when the gateway does not serve the federation (lnv2-client lib.rs
   `resolve_send_gateway`; lnv2-common gateway_api.rs `RealGatewayConnection::routing_info`).
   The route is joined to the URL as `Url::join("/routing_info")`: the URL's path is dropped.
2. The invoice has an amount, has not expired and is of the federation's network
   (lib.rs `validate_send_invoice`).
3. The terms: `send_fee_minimum` / `expiration_delta_minimum` when the invoice's payee is the
   gateway's own node, else the defaults (gateway_api.rs `RoutingInfo::send_parameters`); refused
   above 100 sat + 15,000 ppm (`PaymentFee::SEND_FEE_LIMIT`) or a delta above 1440 blocks
   (lib.rs `EXPIRATION_DELTA_LIMIT`). A fee is `msat · ppm / 10^6 + base`
   (`PaymentFee::absolute_fee`).
4. The contract (lib.rs `fund_outgoing_contract`): `(tweak, ephemeral_pk) =
   ECDH(static pk, new ephemeral key)` (lnv2-common tweak.rs `generate`: libsecp256k1's
   SHA-256 of the compressed shared point); the refund key is the tweak;
   `OutgoingContract {payment_image: Hash(invoice's payment hash), amount: fee.add_to(invoice
   msat), expiration: consensus_block_count + delta + 12 (CONTRACT_CONFIRMATION_BUFFER),
   claim_pk: routing_info.module_public_key, refund_pk, ephemeral_pk}`; the block count is
   `module_<lnv2>_consensus_block_count` by threshold consensus (api.rs).
5. It is funded by a transaction whose output is `LightningOutputV0::Outgoing(contract)`,
   inputs the user's e-cash with change (the wallet's `create_operation`, a `Foreign` output
   costing the contract and the lnv2 output fee); the send waits until the federation accepts
   it (send_sm.rs `await_funding`), while the change notes are issued beside it.
6. `POST <gateway>/send_payment` `SendPaymentPayload {federation_id, outpoint, contract,
   invoice: {"Bolt11": …}, auth}`, auth = BIP340 by the refund key over the SHA-256 of the
   invoice's consensus encoding (send_sm.rs `gateway_send_payment`), retried on any error or
   an answer that is neither the preimage nor the gateway's forfeit signature
   (`verify_gateway_response`), with `api_networking_backoff` (Fibonacci 250 ms .. 10 s);
   beside it `module_<lnv2>_await_preimage((outpoint, expiration))` by threshold consensus
   (`await_preimage`): the first to answer wins.
7. `{"Ok": preimage}` is success. `{"Err": forfeit}` is refunded at once: an input
   `LightningInputV0::Outgoing(outpoint, Cancel(forfeit))` signed by the refund key
   (`transition_gateway_send_payment`); await_preimage's None (expired) by `Refund`.

Bench-only: the refund key lives in memory, not in a database (fedimint-cli keeps its state
machines on disk), so a crash mid-payment loses that payment; the product never pays as a user.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field

import httpx
from bolt11 import decode as bolt11_decode
from coincurve import PrivateKey

from fmclient.lnv2 import (
    Lnv2Config,
    OutgoingContract,
    PaymentImage,
    cancel_input,
    invoice_hash,
    outgoing_output,
    refund_input,
)
from fmclient.tx import ModuleItem
from fmclient.wallet import MintWallet
from fmclient.wallet_operations import Foreign

EXPIRATION_DELTA_LIMIT = 1440
CONTRACT_CONFIRMATION_BUFFER = 12
CURRENCY = {"bitcoin": "bc", "testnet": "tb", "testnet4": "tb", "signet": "tbs", "regtest": "bcrt"}
BACKOFF_S = (0.25, 10.0)  # api_networking_backoff: Fibonacci from 250 ms, at most 10 s


class PaymentFailed(Exception):
    """The payment could not be made (nothing paid; a funded contract was refunded)."""


@dataclass(frozen=True)
class Fee:
    base_msat: int
    ppm: int

    def of(self, msat: int) -> int:
        return msat * self.ppm // 1_000_000 + self.base_msat

    def within(self, limit: Fee) -> bool:
        return self.base_msat <= limit.base_msat and self.ppm <= limit.ppm

    @classmethod
    def from_json(cls, value: dict) -> Fee:
        return cls(int(value["base"]), int(value["parts_per_million"]))


SEND_FEE_LIMIT = Fee(100_000, 15_000)


@dataclass(frozen=True)
class RoutingInfo:
    lightning_public_key: str
    module_public_key: bytes
    send_fee_default: Fee
    send_fee_minimum: Fee
    expiration_delta_default: int
    expiration_delta_minimum: int

    @classmethod
    def from_json(cls, value: dict) -> RoutingInfo:
        return cls(
            str(value["lightning_public_key"]),
            bytes.fromhex(value["module_public_key"]),
            Fee.from_json(value["send_fee_default"]),
            Fee.from_json(value["send_fee_minimum"]),
            int(value["expiration_delta_default"]),
            int(value["expiration_delta_minimum"]),
        )

    def send_parameters(self, payee: str) -> tuple[Fee, int]:
        if payee == self.lightning_public_key:
            return self.send_fee_minimum, self.expiration_delta_minimum
        return self.send_fee_default, self.expiration_delta_default


def refund_key(static_pk: bytes, ephemeral_secret: bytes | None = None) -> tuple[bytes, bytes]:
    """(refund secret key = the ECDH tweak, ephemeral public key) (tweak.rs `generate`)."""
    ephemeral = PrivateKey(ephemeral_secret) if ephemeral_secret else PrivateKey()
    return ephemeral.ecdh(static_pk), ephemeral.public_key.format(compressed=True)


def outgoing_contract(
    bolt11: str,
    routing: RoutingInfo,
    block_count: int,
    static_pk: bytes,
    network: str,
    now: float | None = None,
) -> tuple[OutgoingContract, bytes]:
    """The contract paying `bolt11` through the gateway of `routing`, and its refund secret;
    PaymentFailed where fedimint-cli refuses the invoice or the gateway's terms."""
    inv = bolt11_decode(bolt11)
    if not inv.amount_msat:
        raise PaymentFailed("the invoice has no amount")
    if (now or time.time()) > inv.date + inv.expiry:
        raise PaymentFailed("the invoice has expired")
    if inv.currency != CURRENCY.get(network):
        raise PaymentFailed(f"the invoice is of {inv.currency}, the federation of {network}")
    fee, delta = routing.send_parameters(inv.payee)
    if not fee.within(SEND_FEE_LIMIT):
        raise PaymentFailed("the gateway's fee exceeds the limit")
    if delta > EXPIRATION_DELTA_LIMIT:
        raise PaymentFailed("the gateway's expiration delta exceeds the limit")
    secret, ephemeral_pk = refund_key(static_pk)
    contract = OutgoingContract(
        PaymentImage("Hash", bytes.fromhex(inv.payment_hash)),
        inv.amount_msat + fee.of(inv.amount_msat),
        block_count + delta + CONTRACT_CONFIRMATION_BUFFER,
        routing.module_public_key,
        PrivateKey(secret).public_key.format(compressed=True),
        ephemeral_pk,
    )
    return contract, secret


def send_payment_body(
    federation_id: str, txid: str, out_idx: int, contract: OutgoingContract, bolt11: str,
    refund_secret: bytes,
) -> dict:  # fmt: skip
    auth = PrivateKey(refund_secret).sign_schnorr(invoice_hash(bolt11), os.urandom(32))
    return {
        "federation_id": federation_id,
        "outpoint": {"txid": txid, "out_idx": out_idx},
        "contract": contract.json(),
        "invoice": {"Bolt11": bolt11},
        "auth": auth.hex(),
    }


def gateway_answer(contract: OutgoingContract, answer: object) -> tuple[str, bytes] | None:
    """("preimage", p) or ("forfeit", signature) for an answer `verify_gateway_response`
    accepts; None for any other (asked again)."""
    if not isinstance(answer, dict) or len(answer) != 1:
        return None
    ((kind, value),) = answer.items()
    try:
        if kind == "Ok" and isinstance(value, list) and len(value) == 32:
            preimage = bytes(value)
            return (
                ("preimage", preimage) if contract.payment_image.verify_preimage(preimage) else None
            )
        if kind == "Err" and isinstance(value, str):
            sig = bytes.fromhex(value)
            return ("forfeit", sig) if contract.verify_forfeit(sig) else None
    except (ValueError, TypeError):
        pass
    return None


def route(gateway_url: str, path: str) -> str:
    """`Url::join` of an absolute path: the gateway URL's own path is dropped."""
    return str(httpx.URL(gateway_url).join(path))


@dataclass
class Payment:
    """One payment's outcome: `preimage` on success; `refunded_msat` when it was forfeited;
    `spent_msat` what the funding transaction took from the wallet (its notes less its change)."""

    invoice_msat: int
    contract_msat: int
    spent_msat: int
    seconds: float  # start (routing info asked) to the end (preimage, or refund)
    funded_seconds: float = 0.0  # start to the funding transaction's acceptance
    preimage: bytes | None = None
    refunded_msat: int = 0
    by: str = "gateway"  # who answered first: "gateway" or "federation" (await_preimage)


@dataclass
class Lnv2User:
    """One user: an e-cash wallet of its own (its own guardian connections) and an HTTP
    client of its own; pays one invoice at a time."""

    wallet: MintWallet
    http: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=90))
    static_secret: bytes = field(default_factory=lambda: PrivateKey().secret)
    _change: asyncio.Task | None = None  # the last funding's change, being issued

    def __post_init__(self) -> None:
        cfg = self.wallet.config
        self.lnv2 = cfg.module_id("lnv2")
        self.lnv2_config = Lnv2Config.from_bytes(cfg.modules[self.lnv2].body)
        self.federation_id = cfg.federation_id

    async def settled(self) -> None:
        """The last funding's change issued (its notes in the wallet)."""
        if self._change is not None:
            await asyncio.gather(self._change, return_exceptions=True)

    async def close(self) -> None:
        await self.settled()
        await self.http.aclose()

    async def routing_info(self, gateway_url: str) -> RoutingInfo:
        r = await self.http.post(route(gateway_url, "/routing_info"), json=self.federation_id)
        if r.status_code != 200:
            raise PaymentFailed(f"routing_info: {r.status_code} {r.text[:200]}")
        if r.json() is None:
            raise PaymentFailed("the gateway does not serve this federation")
        return RoutingInfo.from_json(r.json())

    async def pay(self, bolt11: str, gateway_url: str, timeout: float = 120.0) -> Payment:
        start = time.perf_counter()
        api = self.wallet.api
        routing = await self.routing_info(gateway_url)
        block_count = int(
            await api.current_consensus(f"module_{self.lnv2}_consensus_block_count", None)
        )
        static_pk = PrivateKey(self.static_secret).public_key.format(compressed=True)
        contract, secret = outgoing_contract(
            bolt11, routing, block_count, static_pk, self.lnv2_config.network
        )
        txid, spent = await self._fund(contract)
        funded = time.perf_counter() - start
        body = send_payment_body(self.federation_id, txid, 0, contract, bolt11, secret)
        gateway = asyncio.create_task(self._ask_gateway(gateway_url, body, contract))
        federation = asyncio.create_task(
            api.current_consensus(
                f"module_{self.lnv2}_await_preimage",
                [{"txid": txid, "out_idx": 0}, contract.expiration],
                timeout=timeout,
                long_poll=True,
            )
        )
        try:
            done, _ = await asyncio.wait(
                {gateway, federation}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for t in (gateway, federation):
                t.cancel()
            await asyncio.gather(gateway, federation, return_exceptions=True)
        invoice_msat = int(bolt11_decode(bolt11).amount_msat)
        out = Payment(invoice_msat, contract.amount_msat, spent, 0.0, funded)
        if gateway in done and not gateway.exception():
            kind, value = gateway.result()
            if kind == "preimage":
                out.preimage = value
            else:
                out.refunded_msat = await self._refund(contract, secret, txid, value)
        elif federation in done and not federation.exception():
            found = federation.result()
            if isinstance(found, list) and contract.payment_image.verify_preimage(bytes(found)):
                out.preimage, out.by = bytes(found), "federation"
            else:  # expired unpaid
                out.refunded_msat = await self._refund(contract, secret, txid, None)
        else:
            raise PaymentFailed(f"no answer within {timeout:.0f} s (contract at {txid}:0)")
        out.seconds = time.perf_counter() - start
        return out

    async def _fund(self, contract: OutgoingContract) -> tuple[str, int]:
        """Submit the funding transaction and wait until the federation accepts it: (txid,
        msat it took from the wallet). Its change is issued in the background."""
        w = self.wallet
        cost = contract.amount_msat + self.lnv2_config.fee_msat(contract.amount_msat)
        try:
            notes = w.choose(cost)
        except ValueError:
            if self._change is None:
                raise
            await asyncio.gather(self._change, return_exceptions=True)
            notes = w.choose(cost)
        op_id = os.urandom(16).hex()
        item = ModuleItem(self.lnv2, outgoing_output(contract))
        w.create_operation(
            op_id, "lnv2_send", notes, external=False, foreign=Foreign((), (), (item,), -cost)
        )
        row = w.db.execute("SELECT txid, amount_msat FROM operations WHERE id = ?", (op_id,))
        txid, change = row.fetchone()
        spent = sum(n.amount_msat for n in notes) - int(change)
        finish = asyncio.create_task(w.finish(op_id))
        accepted = asyncio.create_task(
            w.api.current_consensus("await_transaction", txid, long_poll=True)
        )
        done, _ = await asyncio.wait({finish, accepted}, return_when=asyncio.FIRST_COMPLETED)
        if finish in done and finish.exception() is not None:
            accepted.cancel()
            await asyncio.gather(accepted, return_exceptions=True)
            raise PaymentFailed(f"funding refused: {finish.exception()}")
        if accepted not in done:
            accepted.cancel()
        await asyncio.gather(accepted, return_exceptions=True)
        self._change = finish
        return txid, spent

    async def _ask_gateway(
        self, gateway_url: str, body: dict, contract: OutgoingContract
    ) -> tuple[str, bytes]:
        delays = list(BACKOFF_S[:1]) * 2
        while True:
            try:
                r = await self.http.post(route(gateway_url, "/send_payment"), json=body)
                if r.status_code == 200:
                    answer = gateway_answer(contract, r.json())
                    if answer is not None:
                        return answer
            except (httpx.HTTPError, ValueError):
                pass
            await asyncio.sleep(delays[-1])
            delays.append(min(BACKOFF_S[1], delays[-1] + delays[-2]))

    async def _refund(
        self, contract: OutgoingContract, secret: bytes, txid: str, forfeit: bytes | None
    ) -> int:
        """Take the contract back (Cancel with the forfeit, or Refund after expiry) into
        new notes: the msat credited."""
        spend = refund_input(txid, 0) if forfeit is None else cancel_input(txid, 0, forfeit)
        net = contract.amount_msat - self.lnv2_config.fee_msat(contract.amount_msat)
        op_id = os.urandom(16).hex()
        self.wallet.create_operation(
            op_id, "lnv2_refund", [], external=False,
            foreign=Foreign((ModuleItem(self.lnv2, spend),), (secret,), (), net),
        )  # fmt: skip
        done = await self.wallet.finish(op_id)
        return int(done["amount_msat"])

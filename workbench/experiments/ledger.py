"""The action ledger: every launch is an intent, an act and an outcome in the audit log.

A launch that changes production must never happen twice nor be forgotten
half-way. The ledger follows the write-ahead pattern of transaction logs
(Mohan et al., "ARIES", ACM TODS 1992) on the tamper-evident audit log
(:mod:`workbench.governance.audit`):

1. check the caller's role (:func:`workbench.governance.policy.authorize`; a
   refusal is audited as ``access.denied`` and nothing else happens);
2. append ``action.intent`` with an **idempotency key** (the same launch asked
   twice carries the same key, and a key whose outcome is already recorded
   is answered from the log without acting again);
3. act on the flag provider, within its stated timeout;
4. append ``action.outcome`` (``applied`` with the provider's receipt, or
   ``failed`` with the fault in one sentence).

A crash between 2 and 4 leaves an intent with no outcome. :func:`reconcile`
(run at the start of every loop and of the served app) asks the provider
what it holds for that flag and records ``reconciled`` as the outcome: the
flag is there as intended (the act happened) or it is not (it did not).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..governance.audit import append_audit, read_audit
from ..governance.policy import Action, Identity, authorize
from .flags import FlagProvider, FlagProviderError

INTENT = "action.intent"
OUTCOME = "action.outcome"


@dataclass(frozen=True)
class LaunchReceipt:
    """What a launch did, with the audit records that prove it."""

    idempotency_key: str
    flag: str
    status: str  # applied | failed | replayed
    intent_seq: int
    outcome_seq: int
    receipt: dict = field(default_factory=dict)
    error: str | None = None

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def idempotency_key(resource: str, flag: str, definition: dict, where: str = "") -> str:
    """A key that is the same for the same launch asked twice of the same provider."""
    body = json.dumps({"r": resource, "f": flag, "d": definition, "w": where}, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()[:24]


def _records(audit: Path, key: str) -> tuple[list, list]:
    recs = read_audit(audit, action="action.")
    intents = [r for r in recs if r.action == INTENT and r.details.get("key") == key]
    outcomes = [r for r in recs if r.action == OUTCOME and r.details.get("key") == key]
    return intents, outcomes


def _where(provider) -> str:
    return str(getattr(provider, "path", None) or getattr(provider, "url", None)
               or getattr(provider, "name", ""))


def _holds(provider, flag: str, definition: dict) -> bool:
    """Whether the provider still holds the flag as launched (else a replay must act again)."""
    try:
        return provider.current(flag) == definition
    except FlagProviderError:
        return False


def launch(provider: FlagProvider, flag: str, definition: dict, *, identity: Identity,
           audit: str | Path, resource: str, action: Action = Action.ROLLBACK,
           details: dict | None = None, key: str | None = None) -> LaunchReceipt:
    """Write ``definition`` as flag ``flag`` on ``provider``, with intent and outcome audited.

    Raises
    ------
    PermissionDenied
        The identity's role does not grant ``action`` (audited).
    FlagProviderError
        The provider failed; the outcome ``failed`` is audited first.
    """
    audit = Path(audit)
    authorize(identity, action, resource, audit=audit)
    key = key or idempotency_key(resource, flag, definition, _where(provider))
    intents, outcomes = _records(audit, key)
    done = [o for o in outcomes if o.details.get("status") in ("applied", "reconciled-applied")]
    if done and intents and _holds(provider, flag, definition):
        o = done[-1]
        return LaunchReceipt(key, flag, "replayed", intents[-1].seq, o.seq,
                             dict(o.details.get("receipt") or {}))
    base = {"key": key, "flag": flag, "provider": getattr(provider, "name", "?"),
            "action": Action(action).value, **(details or {})}
    intent = append_audit(audit, INTENT, actor=identity.name, subject=resource,
                          details={**base, "definition": definition})
    try:
        receipt = provider.apply(flag, definition)
        if not isinstance(receipt, dict):
            raise FlagProviderError(f"provider {base['provider']} answered {receipt!r}, "
                                    "not a receipt")
    except FlagProviderError as exc:
        out = append_audit(audit, OUTCOME, actor=identity.name, subject=resource,
                           details={**base, "status": "failed", "intent_seq": intent.seq,
                                    "message": str(exc)})
        raise FlagProviderError(f"{exc} (launch failed; audit records #{intent.seq} intent, "
                                f"#{out.seq} outcome)") from None
    out = append_audit(audit, OUTCOME, actor=identity.name, subject=resource,
                       details={**base, "status": "applied", "intent_seq": intent.seq,
                                "receipt": receipt})
    return LaunchReceipt(key, flag, "applied", intent.seq, out.seq, receipt)


def record_outcome(audit: str | Path, receipt: LaunchReceipt, *, identity: Identity,
                   resource: str, status: str, details: dict) -> int:
    """Record what the experiment concluded (``experiment.concluded``); returns its seq."""
    rec = append_audit(Path(audit), "experiment.concluded", actor=identity.name,
                       subject=resource, details={"key": receipt.idempotency_key,
                                                  "flag": receipt.flag, "status": status,
                                                  **details})
    return rec.seq


def reconcile(audit: str | Path, provider: FlagProvider, *, actor: str = "workbench") -> list[dict]:
    """Close every intent that has no outcome, by asking the provider what it holds.

    Returns one dict per intent reconciled: ``{key, flag, intent_seq,
    outcome_seq, status}`` with status ``reconciled-applied`` (the flag is
    there as intended) or ``reconciled-not-applied``.
    """
    audit = Path(audit)
    recs = read_audit(audit, action="action.")
    closed = {r.details.get("key") for r in recs if r.action == OUTCOME}
    out = []
    for r in recs:
        if r.action != INTENT or r.details.get("key") in closed:
            continue
        d = r.details
        if d.get("provider") != getattr(provider, "name", None):
            continue  # another provider's intent: only that provider can answer for it
        try:
            current = provider.current(d["flag"])
        except FlagProviderError as exc:
            current, note = None, f"provider could not be asked: {exc}"
        else:
            note = ""
        status = ("reconciled-applied" if current is not None
                  and current == d.get("definition") else "reconciled-not-applied")
        rec = append_audit(audit, OUTCOME, actor=actor, subject=r.subject,
                           details={"key": d["key"], "flag": d["flag"], "status": status,
                                    "intent_seq": r.seq, "provider": d.get("provider"),
                                    "message": note or ("the flag is in place as intended"
                                                        if status == "reconciled-applied" else
                                                        "the flag is not in place; the launch "
                                                        "did not happen")})
        closed.add(d["key"])
        out.append({"key": d["key"], "flag": d["flag"], "intent_seq": r.seq,
                    "outcome_seq": rec.seq, "status": status})
    return out

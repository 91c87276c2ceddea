"""Looking up the DNS names of SandboxPolicy egress allowlists, and holding the answers.

A name is asked for its A and AAAA records at once (dnspython's asyncio resolver) from the
nameservers in ``operator.egress.nameservers`` (``HIVE_OPERATOR__EGRESS__NAMESERVERS``), or from
the system resolver when none are set: in a cluster that is the cluster DNS, the one the
sandbox pods use, so both see the same answers. Names are taken as fully qualified (no search
domains).

An answer is held for its TTL (the shortest of the records and CNAMEs it went through), clamped
to ``min_ttl_s`` .. ``max_ttl_s``; until then every reconcile of every policy that names it gets
the same answer, so a reconcile that finds nothing new writes nothing. A failed lookup (no such
name, no A or AAAA records, no answer within ``timeout_s``, every nameserver failing) is an
answer too, with no addresses and the reason, held for ``min_ttl_s``. What the answers open is
decided in `hive.reconcile.sandboxpolicy`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.rdatatype
import dns.resolver
from pydantic import ValidationError

from hive.api.sandboxpolicy import SandboxPolicySpec
from hive.reconcile.sandboxpolicy import Answer, egress_names
from hive.settings import EgressSettings, nameserver_address

log = logging.getLogger(__name__)


class LookupFailed(Exception):
    """A name has no usable answer; the message says why, for the policy's status."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class EgressResolver:
    """Resolves egress names and holds each answer for its (clamped) TTL."""

    def __init__(self, settings: EgressSettings) -> None:
        self.settings = settings
        self._resolver = dns.asyncresolver.Resolver(configure=not settings.nameservers)
        if settings.nameservers:
            self._resolver.nameservers = [
                dns.nameserver.Do53Nameserver(*nameserver_address(entry))
                for entry in settings.nameservers
            ]
        self._resolver.lifetime = settings.timeout_s
        self._held: dict[str, Answer] = {}

    def _clamp(self, ttl: float) -> int:
        return int(min(self.settings.max_ttl_s, max(self.settings.min_ttl_s, ttl)))

    async def answers(self, names: Iterable[str]) -> dict[str, Answer]:
        """An answer for each name: the one held while its TTL lasts, else a fresh lookup."""
        now = _now()
        forget_before = now - dt.timedelta(seconds=self.settings.max_ttl_s)
        for name in [n for n, a in self._held.items() if a.expires_at < forget_before]:
            del self._held[name]  # no policy has asked for it for a whole TTL ceiling
        wanted = list(dict.fromkeys(names))
        stale = [n for n in wanted if n not in self._held or self._held[n].expires_at <= now]
        for answer in await asyncio.gather(*(self.lookup(n) for n in stale)):
            before = self._held.get(answer.host)
            if before is None or before.addresses != answer.addresses or answer.error:
                log.info(
                    "egress name %s: %s (held %ds)",
                    answer.host,
                    answer.error or ", ".join(answer.addresses),
                    answer.ttl_s,
                )
            self._held[answer.host] = answer
        return {n: self._held[n] for n in wanted}

    async def lookup(self, name: str) -> Answer:
        """Ask for `name`'s A and AAAA records now."""
        resolved_at = _now().replace(microsecond=0)
        try:
            found = await asyncio.gather(
                self._records(name, dns.rdatatype.A), self._records(name, dns.rdatatype.AAAA)
            )
        except LookupFailed as exc:
            return Answer(name, (), resolved_at, self.settings.min_ttl_s, str(exc))
        addresses = tuple(sorted({a for found_addresses, _ in found for a in found_addresses}))
        ttls = [ttl for found_addresses, ttl in found if found_addresses]
        if not addresses:
            return Answer(name, (), resolved_at, self.settings.min_ttl_s, "no A or AAAA records")
        return Answer(name, addresses, resolved_at, self._clamp(min(ttls)))

    async def _records(self, name: str, rdtype: dns.rdatatype.RdataType) -> tuple[list[str], int]:
        """The addresses of one record type and their TTL; none when the name has none."""
        try:
            answer = await self._resolver.resolve(
                name, rdtype, search=False, raise_on_no_answer=False
            )
        except dns.resolver.NXDOMAIN as exc:
            raise LookupFailed("no such name (NXDOMAIN)") from exc
        except dns.exception.Timeout as exc:
            raise LookupFailed(f"no answer within {self.settings.timeout_s:g}s") from exc
        except dns.resolver.NoNameservers as exc:
            raise LookupFailed(f"every nameserver failed ({exc})") from exc
        except dns.exception.DNSException as exc:
            raise LookupFailed(f"lookup failed ({exc})") from exc
        if answer.rrset is None:
            return [], 0
        return [r.to_text() for r in answer.rrset], answer.chaining_result.minimum_ttl


_resolvers: dict[str, EgressResolver] = {}


def resolver_for(settings: EgressSettings) -> EgressResolver:
    """The one resolver (and its held answers) for these settings."""
    key = settings.model_dump_json()
    if key not in _resolvers:
        _resolvers[key] = EgressResolver(settings)
    return _resolvers[key]


async def policy_answers(settings: EgressSettings, spec: Mapping[str, Any]) -> dict[str, Answer]:
    """The answers for the DNS names of a SandboxPolicy spec's allowlist (none when the spec
    does not parse: the plan reports that)."""
    try:
        policy = SandboxPolicySpec.model_validate(dict(spec))
    except ValidationError:
        return {}
    names = egress_names(policy)
    return await resolver_for(settings).answers(names) if names else {}

"""Pseudonyms sealed by a Vault transit key against a local key: what a request to OpenBao adds.

    python bench/privacy_transit.py [--values 300]

Starts a real OpenBao (the project's DevVault, on free loopback ports, in a temporary folder)
with a derived, convergent aes256-gcm96 key, as the operator makes a team's pseudonym key, then
prints p50 and p99 of:

1. sealing one new value (one ``transit/encrypt`` request), the same value again (cached in the
   process), opening a pseudonym another pod made (one ``transit/decrypt``), and one card's
   format-preserving stand-in (one ``transit/hmac``);
2. the same with the local AES-SIV key (the Secret's key, no Vault);
3. a 2 KB prompt with five new email addresses pseudonymised in fast mode, with each keyring.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from hive.api.privacy import Boundary, DetectionMode, EntityRule, PrivacySpec, Strategy
from hive.dev.vault import DevVault
from hive.ports import free_port
from hive.runtime.privacy.guard import Guard
from hive.runtime.privacy.handling import Pseudonyms, derive_key
from hive.runtime.privacy.keyring import Keyring, LocalKeyring, TransitKeyring
from hive.settings import get_settings

KEY = "hive-bench-team_pseudonyms"
FILLER = "Please look into the refund request and reply to the customer today. " * 30


def timed(runs: int, step: Callable[[int], object]) -> tuple[float, float]:
    samples = []
    for index in range(runs):
        started = time.perf_counter()
        step(index)
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def keyring_figures(name: str, make: Callable[[], Keyring], values: int) -> None:
    ring = make()
    sealed = [ring.seal("EMAIL_ADDRESS", f"user{i}@example.com") for i in range(values)]
    rows = {
        "seal a new value": timed(values, lambda i: ring.seal("PERSON", f"Person {i}")),
        "seal it again (cached)": timed(values, lambda i: ring.seal("PERSON", f"Person {i}")),
        "open another pod's": timed(values, lambda i: make().open("EMAIL_ADDRESS", sealed[i])),
        "a card's stand-in": timed(
            values, lambda i: ring.digest("CREDIT_CARD", f"4111 1111 1111 {i:04d}")
        ),
    }
    for what, (p50, p99) in rows.items():
        print(f"  {name:7} {what:24} p50 {p50:7.3f} ms   p99 {p99:7.3f} ms")


def prompt_figures(name: str, make: Callable[[], Keyring], runs: int) -> None:
    spec = PrivacySpec(
        mode=DetectionMode.FAST,
        rules=[EntityRule(entity="EMAIL_ADDRESS", strategy=Strategy.PSEUDONYMISE)],
    )
    guard = Guard(spec, key="bench key 0123456789abcdef")
    guard.pseudonyms = Pseudonyms(keyring=make())

    def one(i: int) -> object:
        mails = ", ".join(f"r{i}.{k}@example.com" for k in range(5))
        return guard.scrub_text(f"{FILLER[:1900]} {mails}", Boundary.MODEL_PROMPTS)

    one(-1)  # the detector loaded
    p50, p99 = timed(runs, one)
    print(f"  {name:7} 2 KB prompt, 5 new emails   p50 {p50:7.3f} ms   p99 {p99:7.3f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--values", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        settings = get_settings().dev.model_copy(
            update={
                "state_dir": Path(folder),
                "vault_port": free_port(),
                "vault_cluster_port": free_port(),
            }
        )
        server = DevVault(settings)
        server.up()
        try:
            root = server.client()
            root.secrets.transit.create_key(
                KEY, key_type="aes256-gcm96", derived=True, convergent_encryption=True
            )
            local_key = derive_key("bench key 0123456789abcdef")
            makers: dict[str, Callable[[], Keyring]] = {
                "transit": lambda: TransitKeyring(root, KEY),
                "local": lambda: LocalKeyring(local_key),
            }
            print(f"per value ({args.values} values each)")
            for name, make in makers.items():
                keyring_figures(name, make, args.values)
            print("per prompt")
            for name, make in makers.items():
                prompt_figures(name, make, max(20, args.values // 5))
        finally:
            server.down()


if __name__ == "__main__":
    main()

"""Writes eval.jsonl: the labelled evaluation set of privacy detection (seeded, so running it
again gives the same file).

Each line is ``{"text": ..., "entities": [{"type": ..., "start": ..., "end": ...}]}`` with
character offsets. Texts are short messages an agent would see (tasks, tool output, notes);
values are made up (Luhn-valid test cards, IBANs with valid check digits, documentation IP
ranges mixed with private ones). Hard negatives carry no entity: order numbers that look like
phone numbers, version strings that look like IP addresses, build ids, dates, amounts.

    python tests/data/privacy/make_eval.py
"""

from __future__ import annotations

import json
import random
import string
from pathlib import Path

OUT = Path(__file__).with_name("eval.jsonl")

FIRST = [
    "Maria",
    "James",
    "Aisha",
    "Chen",
    "Olivia",
    "Lukas",
    "Sofia",
    "Daniel",
    "Priya",
    "Ahmed",
    "Emma",
    "Carlos",
    "Hannah",
    "Kenji",
    "Fatima",
    "Michael",
    "Laura",
    "David",
    "Elena",
    "Thomas",
    "Sarah",
    "Robert",
    "Anna",
    "John",
    "Julia",
    "Peter",
    "Grace",
]
LAST = [
    "Garcia",
    "Smith",
    "Khan",
    "Wei",
    "Johnson",
    "Schneider",
    "Rossi",
    "Miller",
    "Patel",
    "Hassan",
    "Brown",
    "Lopez",
    "Fischer",
    "Tanaka",
    "Ali",
    "Williams",
    "Martin",
    "Davis",
    "Novak",
    "Anderson",
    "Taylor",
    "Wilson",
    "Becker",
    "Moore",
    "Clark",
    "Walker",
]
CITIES = [
    "Berlin",
    "Chicago",
    "Madrid",
    "Toronto",
    "Mumbai",
    "London",
    "Paris",
    "Tokyo",
    "Sydney",
    "Boston",
    "Munich",
    "Seattle",
    "Dublin",
    "Rome",
    "Amsterdam",
    "Denver",
    "Vienna",
    "Lisbon",
    "Houston",
    "Oslo",
]
ORGS = [
    "Acme Corp",
    "Globex Inc",
    "Initech",
    "Umbrella Ltd",
    "Stark Industries",
    "Wayne Enterprises",
    "Contoso Ltd",
    "Northwind Traders",
]
DOMAINS = ["example.com", "mail.example.org", "corp.example.net", "example.co.uk"]
CARD_PREFIXES = ["4111", "4539", "5500", "5105", "3714", "6011"]
IBAN_COUNTRIES = {"DE": 18, "GB": None, "FR": 23, "NL": None, "ES": 20}


def luhn_complete(body: str) -> str:
    total = 0
    for index, ch in enumerate(reversed(body)):
        n = int(ch)
        if index % 2 == 0:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return body + str((10 - total % 10) % 10)


def card(rng: random.Random) -> str:
    prefix = rng.choice(CARD_PREFIXES)
    length = 15 if prefix.startswith("37") else 16
    number = luhn_complete(prefix + "".join(rng.choices(string.digits, k=length - 5)))
    if rng.random() < 0.5:
        return number
    sep = rng.choice([" ", "-"])
    if length == 15:
        return sep.join([number[:4], number[4:10], number[10:]])
    return sep.join(number[i : i + 4] for i in range(0, 16, 4))


def iban(rng: random.Random) -> str:
    country = rng.choice(["DE", "GB", "FR", "NL", "ES"])
    if country == "DE":
        bban = "".join(rng.choices(string.digits, k=18))
    elif country == "GB":
        bban = "".join(rng.choices(string.ascii_uppercase, k=4)) + "".join(
            rng.choices(string.digits, k=14)
        )
    elif country == "NL":
        bban = "".join(rng.choices(string.ascii_uppercase, k=4)) + "".join(
            rng.choices(string.digits, k=10)
        )
    elif country == "FR":
        bban = "".join(rng.choices(string.digits, k=23))
    else:
        bban = "".join(rng.choices(string.digits, k=20))
    moved = bban + country + "00"
    check = 98 - int("".join(str(int(c, 36)) for c in moved)) % 97
    code = f"{country}{check:02d}{bban}"
    if rng.random() < 0.5:
        return code
    return " ".join(code[i : i + 4] for i in range(0, len(code), 4))


def email(rng: random.Random) -> str:
    first, last = rng.choice(FIRST).lower(), rng.choice(LAST).lower()
    local = rng.choice(
        [f"{first}.{last}", f"{first[0]}{last}", f"{first}_{last}{rng.randint(1, 99)}"]
    )
    return f"{local}@{rng.choice(DOMAINS)}"


def ip(rng: random.Random) -> str:
    if rng.random() < 0.15:
        return f"2001:db8:{rng.randint(0, 0xFFFF):x}::{rng.randint(1, 0xFFFF):x}"
    first = rng.choice([10, 192, 172, 203, 198, 84, 151])
    return f"{first}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def phone(rng: random.Random) -> str:
    style = rng.randrange(4)
    area, mid, end = rng.randint(201, 989), rng.randint(200, 999), rng.randint(1000, 9999)
    if style == 0:
        return f"+1 {area} {mid} {end}"
    if style == 1:
        return f"({area}) {mid}-{end}"
    if style == 2:
        return f"+44 20 {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}"
    return f"+49 30 {rng.randint(100000, 999999)}"


def ssn(rng: random.Random) -> str:
    return f"{rng.randint(101, 665)}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}"


def api_key(rng: random.Random) -> str:
    alnum = string.ascii_letters + string.digits
    kind = rng.randrange(4)
    if kind == 0:
        return "sk-proj-" + "".join(rng.choices(alnum, k=40))
    if kind == 1:
        return "ghp_" + "".join(rng.choices(alnum, k=36))
    if kind == 2:
        return "AKIA" + "".join(rng.choices(string.ascii_uppercase + string.digits, k=16))
    return "xoxb-" + "-".join("".join(rng.choices(string.digits, k=12)) for _ in range(2))


def person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


MAKERS = {
    "PERSON": person,
    "LOCATION": lambda rng: rng.choice(CITIES),
    "EMAIL_ADDRESS": email,
    "CREDIT_CARD": card,
    "IBAN_CODE": iban,
    "IP_ADDRESS": ip,
    "PHONE_NUMBER": phone,
    "US_SSN": ssn,
    "API_KEY": api_key,
}

TEMPLATES = [
    "Please email {PERSON} at {EMAIL_ADDRESS} about the invoice.",
    "{PERSON} paid with card {CREDIT_CARD} yesterday.",
    "Wire the refund to IBAN {IBAN_CODE} for {PERSON}.",
    "Login from {IP_ADDRESS} was blocked by the firewall.",
    "Call {PERSON} on {PHONE_NUMBER} before noon.",
    "Customer {PERSON} moved to {LOCATION} last spring.",
    "The server at {IP_ADDRESS} rejected the token {API_KEY}.",
    "My phone number is {PHONE_NUMBER} and my email is {EMAIL_ADDRESS}.",
    "Ship the parcel to {PERSON} in {LOCATION}.",
    "Her SSN is {US_SSN}; please verify it with HR.",
    "Rotate the leaked key {API_KEY} now.",
    "Card on file: {CREDIT_CARD}, holder {PERSON}.",
    "{PERSON} flew from {LOCATION} to {LOCATION} on Monday.",
    "Send the contract to {EMAIL_ADDRESS} and copy {EMAIL_ADDRESS}.",
    "The payment from {IBAN_CODE} bounced twice.",
    "Meeting with {PERSON} from the {LOCATION} office, tel {PHONE_NUMBER}.",
    "Traffic from {IP_ADDRESS} and {IP_ADDRESS} looks suspicious.",
    "Dear {PERSON}, your account ending {CREDIT_CARD} was charged.",
    "Reach me at {PHONE_NUMBER} or write to {EMAIL_ADDRESS}.",
    "{PERSON} lives in {LOCATION} and works remotely.",
]

NEGATIVES = [
    "Order number 415-555-0132-77 shipped on 2024-03-01.",
    "Upgrade to version 1.2.3.4 before Friday.",
    "Build v10.0.19041.1 is the last one with the old installer.",
    "Invoice INV-2024-000123 totals 1,234.56 EUR.",
    "The ticket JIRA-4521 was closed at 14:32.",
    "Release 2.10.4.7 fixes the memory leak.",
    "Tracking code 1Z999AA10123456784 is in transit.",
    "Run the job with --threads 16 --batch 512 and a 0.25 ratio.",
    "The meeting moved from 10:30 to 11:45 on 2025-06-12.",
    "Product SKU 4400-1122-33 is out of stock.",
    "Use the sha abc123def456 from the main branch.",
    "Our quarterly revenue grew 12.5 percent to 3.4 million.",
    "Order #20240518-7731 will arrive in 3 to 5 days.",
    "Version string 3.11.4.2 appears in the logs.",
    "The build number is 2023.11.07.1 for this release.",
    "Reference 555-01-99 in the catalogue refers to a chair.",
    "The test suite ran 1200 tests in 45.3 seconds.",
    "Port 8080 and port 443 are open on the load balancer.",
    "Set the timeout to 30 seconds and retry 5 times.",
    "Part 0012-3344-5566 needs a replacement gasket.",
]


def generate(seed: int = 19) -> list[dict[str, object]]:
    rng = random.Random(seed)  # noqa: S311 (made-up test data, not secrets)
    rows: list[dict[str, object]] = []
    for index in range(300):
        template = TEMPLATES[index % len(TEMPLATES)]
        text, entities, rest = "", [], template
        while "{" in rest:
            before, _, after = rest.partition("{")
            kind, _, rest = after.partition("}")
            text += before
            value = MAKERS[kind](rng)
            entities.append({"type": kind, "start": len(text), "end": len(text) + len(value)})
            text += value
        text += rest
        rows.append({"text": text, "entities": entities})
    for index in range(60):
        rows.append({"text": NEGATIVES[index % len(NEGATIVES)], "entities": []})
    rng.shuffle(rows)
    return rows


if __name__ == "__main__":
    rows = generate()
    with OUT.open("w") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    entities = sum(len(r["entities"]) for r in rows)  # type: ignore[arg-type]
    print(f"{len(rows)} texts, {entities} entities -> {OUT}")

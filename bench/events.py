"""Write a seeded CSV of site events: the example shop's ``data/events.csv``, and the
benchmark's bigger copy of it.

One row per event: ``event_id, customer_id, event_at, event_type, amount``. Events are
spread over each day (more at weekends), sorted by time; a purchase has an amount, other
events 0.00. The same arguments write the same bytes.

Usage::

    python bench/events.py OUT.csv [--start 2024-01-01] [--days 366] [--per-day 12]
        [--customers 20] [--seed 11]
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

TYPES = ("visit",) * 7 + ("cart",) * 2 + ("purchase",)
HEADER = ["event_id", "customer_id", "event_at", "event_type", "amount"]


def write_events(
    path: Path,
    *,
    start: date = date(2024, 1, 1),
    days: int = 366,
    per_day: int = 12,
    customers: int = 20,
    seed: int = 11,
) -> int:
    """Write the events of ``days`` days from ``start``; return how many rows."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    event_id = 0
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(HEADER)
        for offset in range(days):
            day = start + timedelta(days=offset)
            weekend = day.weekday() >= 5
            count = max(1, round(per_day * (1.4 if weekend else 1.0) * rng.uniform(0.6, 1.4)))
            moments = sorted(rng.randrange(86_400) for _ in range(count))
            for second in moments:
                event_id += 1
                kind = rng.choice(TYPES)
                amount = round(rng.uniform(5, 200), 2) if kind == "purchase" else 0.0
                at = datetime(day.year, day.month, day.day) + timedelta(seconds=second)
                out.writerow(
                    [
                        event_id,
                        rng.randint(1, customers),
                        at.strftime("%Y-%m-%d %H:%M:%S"),
                        kind,
                        f"{amount:.2f}",
                    ]
                )
    return event_id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2024, 1, 1))
    parser.add_argument("--days", type=int, default=366)
    parser.add_argument("--per-day", type=int, default=12)
    parser.add_argument("--customers", type=int, default=20)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    rows = write_events(
        args.out,
        start=args.start,
        days=args.days,
        per_day=args.per_day,
        customers=args.customers,
        seed=args.seed,
    )
    print(f"wrote {rows} events to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

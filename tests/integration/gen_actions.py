#!/usr/bin/env python3
"""Generates valid actions as JSON Lines for tests and benchmarks.

Each action carries "seq", its position in the output; within one
tenant x entity x field the values rise with seq, so the last one wins."""
import argparse
import json
import random

FIELDS = {
    "campaigns": ("budget_daily", lambda r, i: round(50 + i * 0.01, 2)),
    "crm": ("max_touches", lambda r, i: 1 + i % 20),
    "pricing": ("discount_max_pct", lambda r, i: round((i % 5000) / 100, 2)),
    "routing": ("capacity_per_rep", lambda r, i: 1 + i % 1000),
    "content": ("subject_line", lambda r, i: f"Offer {i}"),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--tenants", type=int, default=20)
    ap.add_argument("--entities", type=int, default=100)
    ap.add_argument("--prefix", default="gen")
    args = ap.parse_args()
    rnd = random.Random(args.seed)
    last = {}
    for i in range(args.count):
        subsystem = rnd.choice(list(FIELDS))
        field, make = FIELDS[subsystem]
        tenant = f"tenant-{rnd.randrange(args.tenants)}"
        entity = f"{subsystem[:3]}-{rnd.randrange(args.entities)}"
        key = (tenant, entity, field)
        value = make(rnd, i)
        if isinstance(value, (int, float)) and key in last and value <= last[key]:
            value = last[key]  # never lower: "last wins" must be checkable
        last[key] = value
        action = {
            "action_id": f"{args.prefix}-{args.seed}-{i}",
            "tenant_id": tenant,
            "owner_subsystem": subsystem,
            "action_type": "config_change",
            "entity_id": entity,
            "proposed_change": {"field": field, "value": value},
            "guardrails": {"max_daily_spend": 100000},
            "confidence": 0.9,
            "estimated_impact": 100,
            "created_at": "2026-11-21T12:00:00Z",
            "seq": i,
        }
        print(json.dumps(action, separators=(",", ":")))


if __name__ == "__main__":
    main()

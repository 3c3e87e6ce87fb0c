#!/usr/bin/env python3
"""Generates actions as JSON Lines for tests and benchmarks.

By default every action is a valid config_change of one field per subsystem.
Each action carries "seq", its position in the output; within one
tenant x entity x field the values rise with seq, so the last one wins.

Options for benchmarks (without them the output is what it always was, byte
for byte, for the same arguments; what they add is drawn from a random
generator of its own):
  --realistic      the mix of a planner run: every action type the subsystem
                   accepts (mostly config_change; reverts name a recent change
                   of the same entity, each at most once), most fields of the
                   executor map, budgets that move by -20 % to +25 % a step, a
                   reason, confidence and impact
  --duplicates F   about a fraction F of the actions re-emit a recent valid
                   action under a new action_id with the same explicit
                   idempotency_key (every action then carries one): the worker
                   records them as 'duplicate'
  --invalid F      about a fraction F break one rule of the executor map (a
                   value out of range or over its guardrail, an unknown field,
                   a type the subsystem does not accept, a date in the past,
                   weights that do not sum to 100): the worker rejects them
  --created-at T   created_at of every action: an RFC 3339 time, or "now" (the
                   time each action is generated, in microseconds)
  --stats FILE     write {"count", "valid", "duplicates", "invalid"} to FILE"""
import argparse
import datetime
import json
import random

FIELDS = {
    "campaigns": ("budget_daily", lambda r, i: round(50 + i * 0.01, 2)),
    "crm": ("max_touches", lambda r, i: 1 + i % 20),
    "pricing": ("discount_max_pct", lambda r, i: round((i % 5000) / 100, 2)),
    "routing": ("capacity_per_rep", lambda r, i: 1 + i % 1000),
    "content": ("subject_line", lambda r, i: f"Offer {i}"),
}

DEFAULT_CREATED_AT = "2026-11-21T12:00:00Z"


# ------------------------------------------------------------ realistic mix
# Valid values for (nearly) every field of schemas/executor_map.json.

def _future_date(r):
    day = datetime.date.today() + datetime.timedelta(days=r.randrange(30, 720))
    return day.isoformat()


def _words(r, n):
    pool = ("growth", "pipeline", "renewal", "trial", "launch", "spring", "pro", "team",
            "demo", "webinar", "upgrade", "savings", "fast", "smart", "new", "free")
    return " ".join(r.choice(pool) for _ in range(n))


REALISTIC = {
    "campaigns": {
        "budget_daily": lambda r: round(r.uniform(20, 4000), 2),
        "budget_total": lambda r: round(r.uniform(5000, 200000), 2),
        "status": lambda r: r.choice(("running", "paused")),
        "target_segment": lambda r: {
            "include": [f"seg-{r.randrange(500)}" for _ in range(r.randrange(1, 4))],
            "exclude": [f"seg-{r.randrange(500)}" for _ in range(r.randrange(0, 3))]},
        "bidding_strategy": lambda r: r.choice(("manual_cpc", "target_cpa", "target_roas",
                                                "maximize_clicks", "maximize_conversions")),
        "end_date": _future_date,
    },
    "crm": {
        "sequence_delay_days": lambda r: r.randrange(0, 31),
        "max_touches": lambda r: r.randrange(1, 21),
        "follow_up_sla_hours": lambda r: r.randrange(1, 169),
        "auto_assign": lambda r: r.random() < 0.5,
        "priority_score_threshold": lambda r: round(r.uniform(0, 100), 1),
    },
    "pricing": {
        "discount_max_pct": lambda r: round(r.uniform(0, 50), 1),
        "tier_threshold": lambda r: sorted(r.sample(range(10, 100000, 10), 3)),
        "promo_code_enabled": lambda r: r.random() < 0.5,
        "trial_days": lambda r: r.randrange(0, 91),
    },
    "routing": {
        "round_robin_enabled": lambda r: r.random() < 0.5,
        "capacity_per_rep": lambda r: r.randrange(1, 1001),
        "territory_rules": lambda r: [
            {"match": {"country": r.sample(("DE", "AT", "CH", "FR", "US", "GB", "JP"), 2)},
             "assign_to": f"team-{r.randrange(50)}"},
            {"match": {"region": r.choice(("EMEA", "AMER", "APAC"))},
             "assign_to": f"team-{r.randrange(50)}"}],
        "overflow_queue": lambda r: f"queue-{r.randrange(40)}",
    },
    "content": {
        "template_id": lambda r: f"tmpl-{r.randrange(3000)}",
        "variant_weights": lambda r: (lambda a: {"short": a, "long": 100 - a})(r.randrange(0, 101)),
        "subject_line": lambda r: _words(r, r.randrange(3, 9)).capitalize(),
        "cta_text": lambda r: _words(r, r.randrange(1, 4)).capitalize(),
    },
}

# Fields an experiment varies, per subsystem that accepts experiments.
EXPERIMENT_FIELD = {"campaigns": "bidding_strategy", "crm": "sequence_delay_days",
                    "pricing": "trial_days", "content": "subject_line"}
SCALE_FIELD = {"campaigns": "budget_daily", "routing": "capacity_per_rep"}
ACCEPTS = {"campaigns": {"config_change", "experiment", "pause", "scale", "revert"},
           "crm": {"config_change", "experiment", "pause", "revert"},
           "pricing": {"config_change", "experiment", "revert"},
           "routing": {"config_change", "scale", "revert"},
           "content": {"config_change", "experiment", "revert"}}
TYPE_MIX = (("config_change", 0.85), ("experiment", 0.05), ("scale", 0.04), ("pause", 0.03),
            ("revert", 0.03))
REASONS = (
    "ROAS {a} over {b} days; the budget ran out before noon on {c} of them",
    "conversion rate fell {a}% week over week while spend held steady",
    "replies after step {c} stay above {a}%, worth keeping in the sequence",
    "win rate at this discount matches the lower tier within {a} points",
    "queue wait time {a} min at peak; {c} reps idle in the other territory",
    "variant leads with {b}% probability after {a} sends",
    "planner run {c}: expected lift {a} per month at confidence {b}%",
)


BUDGET_MAX_DAILY = 5000


def next_budget(r, budgets, tenant, entity, field):
    """A budget near the entity's last one: planners move budgets gradually
    (-20 % to +25 %, inside the +30 % per-action guardrail), never above the
    daily maximum or under the spend so far."""
    key = (tenant, entity, field)
    low, high = (20, BUDGET_MAX_DAILY) if field == "budget_daily" else (1000, 500000)
    prev = budgets.get(key)
    value = r.uniform(100, 3000) if prev is None else prev * r.uniform(0.8, 1.25)
    value = round(min(max(value, low), high), 2)
    budgets[key] = value
    return value


def realistic_action(r, subsystem, tenant, entity, budgets, revertable):
    """One valid action of the realistic mix (without ids and created_at).
    budgets: the last budget per tenant x entity x field, kept up to date;
    revertable: recent plain changes (dicts with action_id, tenant_id,
    subsystem, entity_id, field, value) a revert may name, each only once."""
    x, kind = r.random(), "config_change"
    for name, share in TYPE_MIX:
        if x < share:
            kind = name
            break
        x -= share
    if kind not in ACCEPTS[subsystem] or (kind == "pause" and subsystem != "campaigns"):
        kind = "config_change"
    if kind == "revert":
        if not revertable:
            kind = "config_change"
        else:
            # Undo a recent change, of its entity: it was applied by then, since
            # every change of one entity is consumed in order.
            t = revertable.pop(r.randrange(len(revertable)))
            subsystem, tenant, entity = t["subsystem"], t["tenant_id"], t["entity_id"]
    fields = REALISTIC[subsystem]
    if kind == "experiment":
        field = EXPERIMENT_FIELD[subsystem]
        w = r.randrange(10, 91)
        change = {"field": field, "variants": [
            {"name": "control", "value": fields[field](r), "weight": w},
            {"name": "challenger", "value": fields[field](r), "weight": 100 - w}]}
    elif kind == "pause":
        change = {"field": "status", "value": "paused"}
    elif kind == "revert":
        change = {"field": t["field"], "value": t["value"]}
    elif kind == "scale":
        field = SCALE_FIELD[subsystem]
        change = {"field": field, "value": fields[field](r)}
    else:
        field = r.choice(list(fields))
        change = {"field": field, "value": fields[field](r)}
    if change["field"] in ("budget_daily", "budget_total") and kind != "revert":
        change["value"] = next_budget(r, budgets, tenant, entity, change["field"])
    action = {"tenant_id": tenant, "owner_subsystem": subsystem, "action_type": kind,
              "entity_id": entity, "proposed_change": change}
    if kind == "revert":
        action["revert_of"] = t["action_id"]
    if subsystem == "campaigns":
        action["guardrails"] = {"max_daily_spend": BUDGET_MAX_DAILY, "current_spend": 1000}
    action["confidence"] = round(r.uniform(0.71, 0.99), 2)
    action["estimated_impact"] = round(r.uniform(5, 5000), 2)
    action["reason"] = r.choice(REASONS).format(a=r.randrange(2, 90), b=r.randrange(50, 99),
                                                c=r.randrange(2, 30))
    return action


# Ways to break one rule of the executor map, per subsystem: (field or None
# to keep the change, a function turning a valid action into an invalid one).
def _set(field, value, kind=None):
    def breaker(a):
        a["proposed_change"] = {"field": field, "value": value}
        if kind:
            a["action_type"] = kind
        else:
            a["action_type"] = "config_change"
        if field == "budget_daily":
            a["guardrails"] = {"max_daily_spend": 5000}
        return a
    return breaker


INVALID = {
    "campaigns": (_set("budget_daily", 7500), _set("end_date", "2020-01-31"),
                  _set("status", "archived"), _set("budget_weekly", 900)),
    "crm": (_set("max_touches", 25), _set("follow_up_sla_hours", 0),
            _set("max_touches", 8, kind="scale")),
    "pricing": (_set("discount_max_pct", 75), _set("tier_threshold", [500, 100, 1000]),
                _set("trial_days", 30, kind="scale")),
    "routing": (_set("capacity_per_rep", 0), _set("overflow_queue", "queue with spaces"),
                _set("capacity_per_rep", 50, kind="experiment")),
    "content": (_set("cta_text", "x" * 60), _set("variant_weights", {"a": 50, "b": 40}),
                _set("body_html", "<p>hi</p>")),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--tenants", type=int, default=20)
    ap.add_argument("--entities", type=int, default=100)
    ap.add_argument("--prefix", default="gen")
    ap.add_argument("--realistic", action="store_true")
    ap.add_argument("--duplicates", type=float, default=0.0, metavar="F")
    ap.add_argument("--invalid", type=float, default=0.0, metavar="F")
    ap.add_argument("--created-at", default=DEFAULT_CREATED_AT, metavar="T")
    ap.add_argument("--run-id")
    ap.add_argument("--stats", metavar="FILE")
    args = ap.parse_args()
    if not (0 <= args.duplicates <= 1 and 0 <= args.invalid <= 1
            and args.duplicates + args.invalid <= 1):
        ap.error("--duplicates and --invalid are fractions whose sum is at most 1")
    rnd = random.Random(args.seed)
    # Everything the options add draws from its own generator, so that rnd
    # draws the same with or without them.
    rx = random.Random(args.seed * 1000003 + 17)
    now = args.created_at == "now"
    recent = []  # recent valid originals that duplicates may repeat
    budgets = {}  # realistic: the last budget of each tenant x entity x field
    revertable = []  # realistic: recent plain changes that a revert may undo
    counts = {"count": args.count, "valid": 0, "duplicates": 0, "invalid": 0}
    last = {}
    out = []
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
        draw = rx.random()
        if draw < args.duplicates and recent:
            # The planner re-emits a recent decision under a new id.
            body = dict(rx.choice(recent))
            what = "duplicates"
        else:
            if args.realistic:
                body = realistic_action(rx, subsystem, tenant, entity, budgets, revertable)
            else:
                body = {"tenant_id": tenant, "owner_subsystem": subsystem,
                        "action_type": "config_change", "entity_id": entity,
                        "proposed_change": {"field": field, "value": value},
                        "guardrails": {"max_daily_spend": 100000},
                        "confidence": 0.9, "estimated_impact": 100}
            if args.duplicates:
                body["idempotency_key"] = f"{args.prefix}-{args.seed}-{i}/{body['entity_id']}"
            if draw < args.duplicates + args.invalid:
                body = rx.choice(INVALID[body["owner_subsystem"]])(body)
                what = "invalid"
            else:
                what = "valid"
                if args.duplicates:
                    recent.append(body)
                    if len(recent) > 1000:
                        recent.pop(0)
                if args.realistic and body["action_type"] in ("config_change", "pause", "scale"):
                    revertable.append({"action_id": f"{args.prefix}-{args.seed}-{i}",
                                       "tenant_id": body["tenant_id"],
                                       "subsystem": body["owner_subsystem"],
                                       "entity_id": body["entity_id"],
                                       "field": body["proposed_change"]["field"],
                                       "value": body["proposed_change"]["value"]})
                    if len(revertable) > 1000:
                        revertable.pop(0)
        counts[what] += 1
        action = {"action_id": f"{args.prefix}-{args.seed}-{i}"}
        action.update(body)
        if args.run_id:
            action["run_id"] = args.run_id
        action["created_at"] = (
            datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            if now else args.created_at)
        action["seq"] = i
        out.append(json.dumps(action, separators=(",", ":")))
        if len(out) >= 4096:
            print("\n".join(out))
            out.clear()
    if out:
        print("\n".join(out))
    if args.stats:
        with open(args.stats, "w") as f:
            json.dump(counts, f)
            f.write("\n")


if __name__ == "__main__":
    main()

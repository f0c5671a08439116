def build_report(*a, **k): return {"totals": {"calls": 0}}

"""Simulated card transactions following the generation process of the Fraud-Detection Handbook (Le Borgne et al.,
"Reproducible Machine Learning for Credit Card Fraud Detection - Practical Handbook", chapter 3.2).

Customers and terminals on a 100 x 100 grid; each customer uses the terminals within ``radius``; per day a Poisson
number of transactions at normally distributed times of day, normally distributed amounts. Its three fraud
scenarios: (1) every amount above 220 is a fraud; (2) each day ``compromised_terminals_per_day`` terminals are
drawn and all their transactions in the next 28 days are frauds; (3) each day ``compromised_customers_per_day``
customers are drawn and for 14 days a third of their transactions are frauds with 5x the amount. The defaults
give the Handbook's set: 5,000 customers, 10,000 terminals, 183 days from 2018-04-01.

Two columns are our own additions, not the Handbook's (which has neither): ``location`` (the terminal's 10 x 10
grid cell) and ``device_fingerprint`` (each customer has 1-3 devices; a scenario-3 fraud, whose credentials were
stolen, comes from an unseen device with probability ``stolen_device_share``). Columns use the pipeline's default
field names; :data:`HANDBOOK_COLUMNS` maps them to the Handbook's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._core.checks import check_int, check_number
from .._core.errors import invalid

HANDBOOK_COLUMNS = {"tx_id": "TRANSACTION_ID", "datetime": "TX_DATETIME", "user_id": "CUSTOMER_ID",
                    "terminal_id": "TERMINAL_ID", "amount": "TX_AMOUNT", "tx_time_seconds": "TX_TIME_SECONDS",
                    "tx_time_days": "TX_TIME_DAYS", "is_fraud": "TX_FRAUD", "fraud_scenario": "TX_FRAUD_SCENARIO"}


def simulate_transactions(n_customers: int = 5000, n_terminals: int = 10000, n_days: int = 183, *,
                          start_date: str = "2018-04-01", radius: float = 5.0, seed: int = 0,
                          compromised_terminals_per_day: int = 2, compromised_customers_per_day: int = 3,
                          stolen_device_share: float = 0.7) -> Any:
    """A pandas DataFrame of transactions sorted by time (see the module docstring for the process)."""
    import pandas as pd

    n_customers, n_terminals, n_days, compromised_terminals_per_day, compromised_customers_per_day = (
        check_int(value, name, minimum=low) for name, value, low in (
            ("n_customers", n_customers, 1), ("n_terminals", n_terminals, 1), ("n_days", n_days, 1),
            ("compromised_terminals_per_day", compromised_terminals_per_day, 0),
            ("compromised_customers_per_day", compromised_customers_per_day, 0)))
    radius = check_number(radius, "radius", above=0, expected="a distance > 0 on the 100 x 100 grid")
    check_number(stolen_device_share, "stolen_device_share", minimum=0, maximum=1,
                 expected="a probability in [0, 1]")
    check_int(seed, "seed", minimum=0)
    try:
        start = pd.Timestamp(start_date) if isinstance(start_date, str) else None
    except (ValueError, TypeError, OverflowError):
        start = None
    if start is None or start is pd.NaT:
        raise invalid("start_date", start_date, "a date such as '2018-04-01'")
    rng = np.random.default_rng(seed)

    # profiles (Handbook 3.2.1-3.2.2)
    cust_xy = rng.uniform(0, 100, size=(n_customers, 2))
    mean_amount = rng.uniform(5, 100, size=n_customers)
    std_amount = mean_amount / 2
    mean_nb_tx = rng.uniform(0, 4, size=n_customers)
    term_xy = rng.uniform(0, 100, size=(n_terminals, 2))
    devices = rng.integers(1, 4, size=n_customers)

    # terminals within the radius of each customer (3.2.3), in chunks: 5,000 x 10,000 distances at once is 400 MB
    available: list[np.ndarray] = []
    for lo in range(0, n_customers, 500):
        d2 = ((cust_xy[lo:lo + 500, None, :] - term_xy[None, :, :]) ** 2).sum(-1)
        available.extend(np.flatnonzero(row) for row in d2 < radius ** 2)
    n_available = np.array([len(a) for a in available])

    # transactions (3.2.4): Poisson count per customer and day, times ~ N(noon, 20000 s) kept inside the day
    counts = rng.poisson(mean_nb_tx[:, None], size=(n_customers, n_days))
    counts[n_available == 0] = 0
    cust = np.repeat(np.arange(n_customers), counts.sum(1))
    day = np.concatenate([np.repeat(np.arange(n_days), c) for c in counts]) if len(cust) else np.zeros(0, int)
    seconds = rng.normal(86400 / 2, 20000, size=len(cust))
    inside = (seconds > 0) & (seconds < 86400)
    cust, day, seconds = cust[inside], day[inside], seconds[inside].astype(np.int64)
    amount = rng.normal(mean_amount[cust], std_amount[cust])
    negative = amount < 0
    amount[negative] = rng.uniform(0, mean_amount[cust[negative]] * 2)
    amount = np.round(amount, 2)
    pick = np.floor(rng.uniform(size=len(cust)) * n_available[cust]).astype(np.int64)
    terminal = np.array([available[c][p] for c, p in zip(cust, pick)], dtype=np.int64)
    time_s = day.astype(np.int64) * 86400 + seconds
    order = np.lexsort((cust, time_s))
    cust, day, time_s, amount, terminal = cust[order], day[order], time_s[order], amount[order], terminal[order]

    # fraud scenarios (3.2.5)
    scenario = np.zeros(len(cust), dtype=np.int64)
    scenario[amount > 220] = 1
    for d in range(n_days):
        bad_terms = rng.choice(n_terminals, size=compromised_terminals_per_day, replace=False)
        scenario[np.isin(terminal, bad_terms) & (day >= d) & (day < d + 28)] = 2  # overrides 1, as the Handbook
    device = (rng.uniform(size=len(cust)) * devices[cust]).astype(np.int64)
    device_name = np.char.add(np.char.add(np.char.add("c", cust.astype(str)), "-d"), device.astype(str))
    for d in range(n_days):
        bad_custs = rng.choice(n_customers, size=compromised_customers_per_day, replace=False)
        window = np.flatnonzero(np.isin(cust, bad_custs) & (day >= d) & (day < d + 14))
        chosen = rng.choice(window, size=len(window) // 3, replace=False)  # a third of them, as the Handbook
        amount[chosen] = np.round(amount[chosen] * 5, 2)
        scenario[chosen] = 3
        stolen = chosen[rng.uniform(size=len(chosen)) < stolen_device_share]
        device_name[stolen] = np.char.add("unseen-", stolen.astype(str))

    cell = np.floor(term_xy[terminal] / 10).astype(np.int64)
    timestamp = start.timestamp() + time_s.astype(np.float64)
    return pd.DataFrame({
        "tx_id": np.arange(len(cust)), "timestamp": timestamp, "datetime": pd.to_datetime(timestamp, unit="s"),
        "user_id": cust, "terminal_id": terminal, "amount": amount,
        "location": np.char.add(np.char.add(cell[:, 0].astype(str), "-"), cell[:, 1].astype(str)),
        "device_fingerprint": device_name, "tx_time_seconds": time_s, "tx_time_days": day,
        "is_fraud": scenario > 0, "fraud_scenario": scenario})

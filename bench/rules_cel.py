"""Rule-condition evaluators on our workload: ours (app/rules/language.py) vs cel-python's own
evaluator (celpy) vs common-expression-language (the Rust cel crate bound to Python).

    .venv/bin/pip install common-expression-language   # only for this bench; not a dependency
    .venv/bin/python bench/rules_cel.py [--rounds 2000]

Prints, for 20 realistic rules, the compile time and the µs per evaluation of each engine (best
of 5 runs of `rounds` evaluations), then the SPEC's exact-decimal case as each engine answers it.
An engine that cannot run a rule (a function it lacks) shows "n/a" with the reason counted.
"""

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.rules.language import Env, compile_condition  # noqa: E402

RULES = [
    'tx.amount > 5000 && account_count("24h") > 3',
    "tx.amount >= 10000",
    'tx.amount >= 9000 && tx.amount < 10000 && tx.currency == "EUR"',
    'account_count("1h") >= 5',
    'account_sum("24h") + tx.amount > 20000',
    'account_count("168h") == 0 && tx.amount > 2500',
    'in_list("blocked_counterparties", tx.counterparty)',
    'in_list("blocked_counterparties", tx.counterparty) || in_list("watch", tx.counterparty)',
    'tx.metadata.channel == "api" && tx.amount > 1000',
    'has(tx.metadata.device) && tx.metadata.device == "emulator"',
    'tx.metadata.country in ["KP", "IR", "SY", "CU"]',
    'tx.description.contains("crypto") || tx.description.contains("gift card")',
    'tx.description.matches("(?i)(bitcoin|btc|usdt)")',
    'tx.counterparty.startsWith("Cash ") && tx.amount > 500',
    'tx.reference.endsWith("-retry") && account_count("30m") > 2',
    'size(tx.description) > 120 || size(tx.description) == 0',
    'tx.currency != "EUR" && tx.currency != "USD" && tx.amount > 3000',
    'tx.amount > 999999999999999.98',
    'tx.amount * 2 > account_sum("720h") && account_count("720h") > 10',
    'tx.created_at < timestamp("2026-01-01T00:00:00Z") ? false : tx.amount > 7500',
]

TX: dict[str, Any] = {
    "reference": "ord-000123", "account_id": "acc-42", "amount": Decimal("6250.00"), "currency": "EUR",
    "counterparty": "Acme GmbH", "description": "invoice 42 for consulting services",
    "metadata": {"channel": "api", "device": "ios", "country": "DE"},
    "created_at": datetime(2026, 12, 7, 12, 0, tzinfo=UTC),
}
COUNTS = {timedelta(hours=24): 4, timedelta(hours=1): 1, timedelta(hours=168): 9, timedelta(minutes=30): 0,
          timedelta(hours=720): 31}
SUMS = {timedelta(hours=24): Decimal("8100.50"), timedelta(hours=720): Decimal("52000.00")}
LISTS = {"blocked_counterparties": {"Bad Actor Ltd"}, "watch": {"Acme GmbH"}}


def _window(text: str) -> timedelta:
    return timedelta(hours=int(text[:-1])) if text.endswith("h") else timedelta(minutes=int(text[:-1]))


def best_us(call: Callable[[], Any], rounds: int) -> float:
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(rounds):
            call()
        best = min(best, (time.perf_counter() - started) / rounds)
    return best * 1e6


def timed(build: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    built = build()
    return built, (time.perf_counter() - started) * 1e6


def ours(rule: str) -> tuple[Callable[[], Any], float]:
    env = Env(event="transaction.created", tx=TX, score={},
              account_count=lambda w: COUNTS.get(w, 0), account_sum=lambda w: SUMS.get(w, Decimal(0)),
              in_list=lambda name, value: value in LISTS.get(name, ()))
    program, compile_us = timed(lambda: compile_condition(rule))
    outcome = program.evaluate(env)
    if outcome.error:
        raise RuntimeError(outcome.error)
    return (lambda: program.evaluate(env)), compile_us


def celpy_engine(rule: str) -> tuple[Callable[[], Any], float]:
    import celpy
    from celpy import celtypes

    def count(window: Any) -> Any:
        return celtypes.IntType(COUNTS.get(_window(str(window)), 0))

    def total(window: Any) -> Any:
        return celtypes.DoubleType(float(SUMS.get(_window(str(window)), 0)))

    def in_list(name: Any, value: Any) -> Any:
        return celtypes.BoolType(str(value) in LISTS.get(str(name), ()))

    def build() -> Any:
        environment = celpy.Environment()
        return environment.program(environment.compile(rule),
                                   functions={"account_count": count, "account_sum": total, "in_list": in_list})
    program, compile_us = timed(build)
    plain = {**TX, "amount": float(TX["amount"]), "created_at": None}
    tx: Any = celpy.json_to_cel(plain)
    tx[celtypes.StringType("created_at")] = celtypes.TimestampType(TX["created_at"])
    activation = {"tx": tx, "event": celtypes.StringType("transaction.created")}
    result = program.evaluate(activation)
    if isinstance(result, Exception):
        raise RuntimeError(str(result))
    return (lambda: program.evaluate(activation)), compile_us


def rust_engine(rule: str) -> tuple[Callable[[], Any], float]:
    import cel  # type: ignore[import-not-found]  # installed only to compare

    program, compile_us = timed(lambda: cel.compile(rule))
    context = cel.Context({"tx": {**TX, "amount": float(TX["amount"])}, "event": "transaction.created"})
    context.add_function("account_count", lambda w: COUNTS.get(_window(w), 0))
    context.add_function("account_sum", lambda w: float(SUMS.get(_window(w), 0)))
    context.add_function("in_list", lambda name, value: value in LISTS.get(name, ()))
    program.execute(context)
    return (lambda: program.execute(context)), compile_us


ENGINES: dict[str, Callable[[str], tuple[Callable[[], Any], float]]] = {
    "ours": ours, "celpy": celpy_engine, "cel-rust": rust_engine,
}


def exact_case() -> None:
    rule, amount = "tx.amount > 999999999999999.98", "999999999999999.99"
    print(f"\n{rule}  with tx.amount = {amount} (SPEC: true)")
    env = Env(event="transaction.created", tx={**TX, "amount": Decimal(amount)}, score={},
              account_count=lambda w: 0, account_sum=lambda w: Decimal(0), in_list=lambda n, v: False)
    print(f"  ours      {compile_condition(rule).evaluate(env).matched}")
    try:
        import celpy

        environment = celpy.Environment()
        program = environment.program(environment.compile(rule))
        answer: Any = program.evaluate({"tx": celpy.json_to_cel({"amount": float(amount)})})
        print(f"  celpy     {answer}  (double)")
    except Exception as error:  # noqa: BLE001 - a bench reports, it does not stop
        print(f"  celpy     failed: {error}")
    try:
        import cel

        print(f"  cel-rust  {cel.evaluate(rule, {'tx': {'amount': float(amount)}})}  (double)")
    except Exception as error:  # noqa: BLE001
        print(f"  cel-rust  failed: {error}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2000)
    rounds = parser.parse_args().rounds
    results: dict[str, list[float | None]] = {name: [] for name in ENGINES}
    compiles: dict[str, list[float]] = {name: [] for name in ENGINES}
    failures: dict[str, list[str]] = {name: [] for name in ENGINES}
    for rule in RULES:
        for name, engine in ENGINES.items():
            try:
                call, compile_us = engine(rule)
            except Exception as error:  # noqa: BLE001 - an engine lacking a feature is reported
                results[name].append(None)
                failures[name].append(f"{rule[:50]}: {type(error).__name__}: {str(error)[:80]}")
                continue
            compiles[name].append(compile_us)
            results[name].append(best_us(call, rounds // 4 if name == "celpy" else rounds))
    header = f"{'rule':62} " + " ".join(f"{name + ' µs':>12}" for name in ENGINES)
    print(header)
    for index, rule in enumerate(RULES):
        cells = " ".join(f"{results[name][index]:12.1f}" if results[name][index] is not None else f"{'n/a':>12}"
                         for name in ENGINES)
        print(f"{rule[:62]:62} {cells}")
    print()
    for name in ENGINES:
        done = [value for value in results[name] if value is not None]
        if not done:
            print(f"{name:9} no rule ran")
            continue
        print(f"{name:9} eval median {statistics.median(done):7.1f} µs, mean {statistics.mean(done):7.1f} µs, "
              f"max {max(done):7.1f} µs; compile median {statistics.median(compiles[name]):8.1f} µs; "
              f"{len(done)}/{len(RULES)} rules ran")
        for failure in failures[name]:
            print(f"          n/a  {failure}")
    exact_case()


if __name__ == "__main__":
    main()

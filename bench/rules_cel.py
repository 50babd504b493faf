"""Rule conditions: our evaluator (app/rules/language.py) against cel-python's own and the Rust binding.

    .venv/bin/python bench/rules_cel.py [--n 20000]

For each engine: µs per evaluation of a typical rule, ms per compile, and whether
`999999999999999.99 > 999999999999999.98` comes out true (exact money). The Rust binding
(PyPI `common-expression-language`, module `cel`) is measured when it is importable: it is
not a dependency; `pip install common-expression-language` in a scratch venv to compare.
"""

import argparse
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CONDITION = 'tx.amount > 5000.0 && account_count("24h") > 3'
PLAIN = "tx.amount > 5000.0 && tx.count > 3"  # the same shape for engines without our functions
EXACT = "999999999999999.99 > 999999999999999.98"


def timed(call, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - started) / n * 1e6


def ours(n: int) -> tuple[float, float, bool]:
    from app.rules.language import Env, compile_condition

    program = compile_condition(CONDITION)
    env = Env(event="transaction.created", score={}, account_count=lambda w: 4, account_sum=lambda w: Decimal(0),
              in_list=lambda name, value: False,
              tx={"reference": "r", "account_id": "a", "amount": Decimal("1250.00"), "currency": "USD",
                  "counterparty": None, "description": None, "metadata": {}, "created_at": datetime.now(UTC)})
    return (timed(lambda: program.evaluate(env), n), timed(lambda: compile_condition(CONDITION), 200) / 1000,
            compile_condition(EXACT).evaluate(env).matched)


def celpy_own(n: int) -> tuple[float, float, bool]:
    import celpy
    from celpy import celtypes

    environment = celpy.Environment()
    program = environment.program(environment.compile(PLAIN))
    activation = {"tx": celtypes.MapType({celtypes.StringType("amount"): celtypes.DoubleType(1250.0),
                                          celtypes.StringType("count"): celtypes.IntType(4)})}
    compile_ms = timed(lambda: environment.program(environment.compile(PLAIN)), 50) / 1000
    exact = bool(environment.program(environment.compile(EXACT)).evaluate({}))
    return timed(lambda: program.evaluate(activation), max(200, n // 50)), compile_ms, exact


def rust(n: int) -> tuple[float, float, bool] | None:
    try:
        import cel  # type: ignore[import-not-found]
    except ImportError:
        return None
    program = cel.compile(PLAIN)
    context = {"tx": {"amount": 1250.0, "count": 4}}
    return (timed(lambda: program.execute(context), n), timed(lambda: cel.compile(PLAIN), 200) / 1000,
            bool(cel.evaluate(EXACT, {})))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20_000)
    args = parser.parse_args()
    print(f"{'engine':<44} {'µs/eval':>9} {'ms/compile':>11}  exact money")
    for name, run in (("ours: cel-python's parser, Decimal closures", ours),
                      ("cel-python's own evaluator (double)", celpy_own),
                      ("common-expression-language (Rust, double)", rust)):
        result = run(args.n)
        if result is None:
            print(f"{name:<44} {'not installed':>9}")
            continue
        per_eval, compile_ms, exact = result
        print(f"{name:<44} {per_eval:>9.1f} {compile_ms:>11.2f}  {'yes' if exact else 'NO: ' + EXACT + ' is false'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What the rule screens say: hits in plain words with the values read, versions side by side, what a condition uses."""

from datetime import timedelta

from app.web.rules_view import DiffRow, hit_lines, read_values, side_by_side, uses


def test_a_hit_reads_as_the_rule_with_each_value_and_the_comparison_it_passed():
    condition = 'tx.amount > 10000 && account_count("24h") == 0'
    [line] = hit_lines([{"rule_id": 3, "rule_name": "Large first payment", "version": 2, "risk": 80,
                         "reason": "Large payment", "values": {"tx.amount": "12500.00", 'account_count("24h")': "0"}}],
                       "EUR", {(3, 2): condition})
    assert line.sentence == "Large first payment (v2): tx.amount 12,500.00 EUR > 10,000.00 EUR; account_count(24h) = 0"
    assert (line.rule_id, line.name, line.risk, line.reason) == (3, "Large first payment", 80, "Large payment")


def test_values_without_a_literal_comparison_are_shown_as_read():
    values = {'in_list("blocked", tx.counterparty)': "true", 'account_sum("1h")': "950.5", "tx.currency": "USD"}
    assert read_values(values, 'in_list("blocked", tx.counterparty) || account_sum("1h") > tx.amount', "USD") == [
        'in_list("blocked", tx.counterparty) = true', "account_sum(1h) = 950.50 USD", "tx.currency = USD"]


def test_money_keeps_the_currencys_minor_units_and_never_goes_through_a_float():
    assert read_values({"tx.amount": "999999999999999.99"}, "tx.amount > 999999999999999.98", "USD") == [
        "tx.amount 999,999,999,999,999.99 USD > 999,999,999,999,999.98 USD"]
    assert read_values({"tx.amount": "1500"}, "tx.amount >= 1000", "JPY") == ["tx.amount 1,500 JPY >= 1,000 JPY"]


def test_a_hit_read_without_a_known_currency_takes_the_one_it_read_and_groups_thousands():
    values = {"tx.amount": "14372.18", "tx.currency": '"USD"', 'account_count("24h")': "0"}
    assert read_values(values, 'tx.currency in ["USD", "EUR"] && tx.amount > 10000', None) == [
        "tx.amount 14,372.18 USD > 10,000.00 USD", 'tx.currency = "USD"', "account_count(24h) = 0"]
    assert read_values({"tx.amount": "14372.18"}, "tx.amount > 10000", None) == ["tx.amount 14,372.18 > 10,000"]
    assert read_values({"account_count(\"1h\")": "12"}, 'account_count("1h") > 5000', None) == [
        "account_count(1h) 12 > 5,000"]


def test_versions_side_by_side_mark_changed_added_and_removed_lines():
    old = 'tx.amount > 10000\n&& account_count("24h") == 0'
    new = 'tx.amount > 5000\n&& account_count("24h") == 0\n&& tx.currency == "EUR"'
    assert side_by_side(old, new) == [
        DiffRow("tx.amount > 10000", "tx.amount > 5000", "changed"),
        DiffRow('&& account_count("24h") == 0', '&& account_count("24h") == 0', "same"),
        DiffRow(None, '&& tx.currency == "EUR"', "added"),
    ]
    assert side_by_side("a\nb", "a") == [DiffRow("a", "a", "same"), DiffRow("b", None, "removed")]


def test_the_check_says_which_windows_and_lists_a_condition_uses():
    assert uses({timedelta(hours=24), timedelta(hours=1)}, {"blocked"}) == "Uses windows 1h, 24h and list blocked."
    assert uses({timedelta(minutes=90)}, set()) == "Uses window 90m."
    assert uses(set(), set()) == "Reads only the transaction (no windows, no lists)."

"""Riskdesk: risk-review back office for payments teams."""

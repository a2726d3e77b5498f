"""Audit recorded Chinese customer-service calls against service norms."""

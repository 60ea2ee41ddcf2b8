"""Bisection: which change between a good and a bad repository broke a CI job (issue 16).
The rules are conveyor.domain.bisect's; this service plans, composes the step repositories,
reads the votes and keeps the record."""

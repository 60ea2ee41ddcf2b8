"""Turning a prepared spec into RPMs: spec preparation and the build drivers."""

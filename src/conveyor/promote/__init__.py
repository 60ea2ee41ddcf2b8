"""Promotion: criteria (versioned YAML), the pure decision rules (`decide`), the label move
shared with the API (`labels`), and the engine that evaluates every target (`engine`).

The package imports nothing itself, so that `conveyor`'s other commands start quickly."""

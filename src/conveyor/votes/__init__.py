"""CI votes: recording them (`writer`, one thread with group commit) and reading them back
(`queries`: a commit's or an aggregate's votes, the last tested repository).

A service below the interfaces: the API's DLRN endpoints only parse parameters, call these and
shape DLRN's JSON, so the CLI or a dashboard can ask the same questions without HTTP. Nothing
here imports `conveyor.api`; a refusal is a `VoteRefused` (errors.py) that each interface
answers in its own way.

The package imports nothing itself, so that `conveyor`'s other commands start quickly."""

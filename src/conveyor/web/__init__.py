"""The dashboard `conveyor serve` shows at `/`: one look and one navigation over the whole
journey (trunk, FTBFS, promotions and votes, buildsys tags, releases, upper-constraints
drift, repository diffs, the published tree). An interface: each page parses its
parameters, asks a read-side service (`conveyor.reports`, `conveyor.tags`, `conveyor.uc`)
and renders the bundled templates; nothing is loaded from elsewhere.
"""

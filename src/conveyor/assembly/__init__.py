"""The composition root: a builder assembled from conveyor.toml, and where it keeps its state."""

"""Build jobs for workers on other machines: procrastinate on the builder's PostgreSQL."""

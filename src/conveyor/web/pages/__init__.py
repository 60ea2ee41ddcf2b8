"""One module per page of the dashboard (its routes), in the navigation's order."""

"""Example data and demos for conveyor; not part of the installed package."""

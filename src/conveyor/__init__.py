"""conveyor: continuous delivery of multi-repository software as RPM repositories."""

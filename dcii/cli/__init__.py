"""The `dcii` command line."""

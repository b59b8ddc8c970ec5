"""DCII: the clearance-and-investigations index. `dcii.v1` is the generated wire API; `dcii.cli` the CLI."""

__version__ = "0.1.0"

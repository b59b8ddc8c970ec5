"""Repository side: connectors that push tracings to the index using only the generated API (dcii.v1)."""

"""Storage backends behind one interface (base.TracingStore)."""

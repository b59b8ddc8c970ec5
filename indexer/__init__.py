"""The write side of the index: model, edit criteria, normalization, lifecycle, storage. No gRPC here."""

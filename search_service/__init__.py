"""The DCII gRPC search service: mutual-TLS server, PKI helpers and request handling."""

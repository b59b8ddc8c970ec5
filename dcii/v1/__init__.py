"""Generated from proto/dcii/v1 by scripts/gen_protos.py. Do not edit."""

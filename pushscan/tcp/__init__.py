"""TCP tracking and reassembly (sans-I/O)."""

"""Coverage-guided fuzzing (atheris) of the parsers that take outside bytes; see fuzz/README.md."""

"""Coverage-guided fuzzing (atheris over libFuzzer); see README.md beside this file."""

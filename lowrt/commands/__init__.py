"""One module per group of lowrt verbs; each verb is cmd_<name>(globals, argv) -> exit code."""

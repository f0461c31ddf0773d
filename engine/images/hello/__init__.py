"""The hello-world image's program: hello.c, built static at install time (see build.py)."""

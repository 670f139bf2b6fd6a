"""The `build.py demo` command: a prompt in, an animated Rigify human out (see __main__.py)."""

"""meshctl subcommands: one module (or function) per command, each `main(argv) -> int`.

They are registered in `meshctl.cli.COMMANDS`; shared flags and output helpers live in `common`.
"""

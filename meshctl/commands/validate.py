"""`meshctl validate FILE_OR_DIRECTORY...`: check agent config files as `consul validate` does."""

from __future__ import annotations

from meshctl.commands.common import err, new_parser, out, parse
from meshctl.configfile import FORMATS, ConfigError
from meshctl.server.agent.config import load
from meshctl.server.agentconfig import agent_config, startup_problem


def main(argv: list[str]) -> int:
    """validate [-config-format json|hcl|yaml] [-quiet] FILE_OR_DIRECTORY..."""
    p = new_parser("meshctl validate", "Check that config files are valid for `meshctl agent`.", http=False)
    p.flag("config-format", default=None, choices=list(FORMATS),
           help="read every file in this format, whatever its extension")
    p.bool_flag("quiet", help="print nothing when the configuration is valid")
    args, rest = parse(p, argv)
    if not rest:
        err("Must specify at least one config file or directory")
        return 1
    sources = [("file", path) for path in rest]  # a directory given as a file is read as a directory
    try:
        files = load(sources, args.config_format)
        cfg = agent_config(files, {}, sources, args.config_format)
        problem = startup_problem(cfg, create=False) if cfg.server else None
        if problem:
            raise ConfigError(problem)
    except ConfigError as exc:
        err(f"Config validation failed: {exc}")
        return 1
    if not args.quiet:
        out("Configuration is valid!")
    return 0

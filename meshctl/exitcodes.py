"""consul-template's exit codes, shared by `meshctl template`, envconsul and replicate (as upstream)."""

EXIT_OK = 0
EXIT_ERROR = 11  # anything unexpected
EXIT_INTERRUPT = 12  # the kill signal arrived
EXIT_PARSE_FLAGS = 13  # a bad command line
EXIT_RUNNER = 14  # rendering, a command or a watch failed
EXIT_CONFIG = 15  # a bad configuration

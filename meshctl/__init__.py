"""meshctl: a Consul-compatible store and the Consul ecosystem's companion tools in one package."""

__version__ = "0.1.0"

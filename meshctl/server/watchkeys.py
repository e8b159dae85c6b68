"""Names of the things a blocking query can wait on.

The state machine marks these as changed; `watch.py` wakes the waiters registered on
them. A KV key's waiters are found both by exact key and by every prefix of it.
"""

KVS = "kvs"
NODES = "nodes"
SERVICES = "services"
CHECKS = "checks"
SESSIONS = "sessions"
EVENTS = "events"
ACL = "acl"
TABLES = (KVS, NODES, SERVICES, CHECKS, SESSIONS, EVENTS, ACL)
QUERIES = "queries"  # prepared queries (their index is kept apart from TABLES: see state/queries.py)
COORDINATES = "coordinates"
EVERYTHING = "*"  # a snapshot restore changes everything

KV_PREFIX = "kv:"


def kv(key: str) -> str:
    return KV_PREFIX + key


def node(name: str) -> str:
    return "node:" + name


def service(name: str) -> str:
    return "svc:" + name.lower()


def session(sid: str) -> str:
    return "session:" + sid

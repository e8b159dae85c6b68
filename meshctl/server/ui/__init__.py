"""The web UI's static files (static/): a small single-page app of plain JavaScript modules.

Served by every agent under /ui/ (meshctl/server/http/ui.py); nothing to build. The app talks
only to the public HTTP API of the agent that served it, with the token the user logged in with.
"""

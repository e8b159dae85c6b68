"""meshctl.server.http"""

"""meshctl.server"""

"""meshctl.server.agent"""

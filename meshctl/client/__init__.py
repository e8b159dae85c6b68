"""meshctl.client"""

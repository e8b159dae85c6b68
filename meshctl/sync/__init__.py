"""meshctl.sync"""

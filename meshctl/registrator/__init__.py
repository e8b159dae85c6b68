"""meshctl.registrator"""

"""meshctl.template"""

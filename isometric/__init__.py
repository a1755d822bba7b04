"""Isometric Certify API: the portal's client, and a local emulator (isometric.emulator).

Framework-free on purpose: nothing here imports Django.
"""

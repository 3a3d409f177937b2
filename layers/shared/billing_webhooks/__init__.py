"""Shared code of the webhook functions: payload models and the one request pipeline.

Kept import-free on purpose: each function imports only the modules it needs (cold start).
"""

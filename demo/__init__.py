"""The demo of the whole life cycle (`make demo`): a client of the platform, so it lives beside the SDK.

It may import the SDK (to talk to admin) and the platform core (to start and stop the local stack); nothing
of the platform imports it.
"""

"""Easel platform core: settings, metadata, adapters, blob store, launcher, local stack, CLI."""

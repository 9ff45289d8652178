"""Easel platform core: settings, metadata, adapters, blob store, dataset formats, model-template API,
launcher, local stack and the server verbs. It imports neither ``slicing`` nor the SDK."""

"""Policies: the interface and its execution attributes (``base``), Easel's priced scheduler (``priced``)
with its arrival-rate estimate, and the baselines it is measured against (``baselines``)."""

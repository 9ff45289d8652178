"""Train worker: runs trials proposed by the advisor (filled in by the training issue)."""

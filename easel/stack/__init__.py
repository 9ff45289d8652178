"""The real servers of the local stack: PostgreSQL, Redis and a Kafka-protocol broker on loopback."""

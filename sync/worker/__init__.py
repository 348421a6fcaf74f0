"""Entry points of the sync engine: the broker, actors, the relay and the scheduler."""

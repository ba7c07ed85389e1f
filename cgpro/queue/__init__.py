"""The durable message queue: spool, routing, logical queues, local delivery, rules, notifications."""

"""zafka.coordination: see README.md in this folder for what it owns."""

"""Model backends (transformers, OpenAI-compatible HTTP, fake) and embedded-model provisioning."""

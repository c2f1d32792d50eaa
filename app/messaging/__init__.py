"""The domain of conversations: threads, messages and deliveries. Views, API, CLI and jobs call these."""

"""REST transport: parse and authorize, then call domain services."""

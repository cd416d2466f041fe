"""Authentication: JWT bearer tokens, email one-time codes and Solana wallet sign-in."""

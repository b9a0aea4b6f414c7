"""Sans-IO protocol adapters: wire bytes ⇄ protocol events and response plans."""

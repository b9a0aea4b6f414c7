"""The pure core: decides what the response to a request is. No sockets, no threads."""

"""Small pieces for frameworks that leave the kit nothing to read in the ASGI scope."""

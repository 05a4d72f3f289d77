"""The demo API, one router per resource."""
